//! The browser entrance through the in-process app: the embedded UI files (types, ETags, the
//! security headers), the login session (cookie flags, CSRF on changes, logout, expiry, the
//! key losing admin rights, the login throttle), and the relay's unknown paths unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::in_process::InProcessApp;
use common::relay_env::setup;
use relaybox::http::ui::SessionPolicy;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The in-process app with a router of its own, so the session lifetimes can be chosen.
struct Ui {
    app: InProcessApp,
    router: Router,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// `relaybox_session=<value>`, ready for a `Cookie` header.
    fn session_cookie(&self) -> String {
        let set = self.header("set-cookie").expect("a session cookie");
        set.split(';').next().unwrap().trim().to_string()
    }
}

impl Ui {
    async fn start() -> Ui {
        Self::start_with(SessionPolicy::default()).await
    }

    async fn start_with(policy: SessionPolicy) -> Ui {
        let app = InProcessApp::start().await;
        let router = relaybox::http::router_with_sessions(std::sync::Arc::clone(&app.app), policy);
        Ui { app, router }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn login(&self, key: &str, headers: &[(&str, &str)]) -> Reply {
        let body = json!({ "key": key }).to_string();
        self.send("POST", "/admin/session", headers, Some(&body))
            .await
    }

    /// Log in with the admin key: (cookie header value, CSRF token).
    async fn admin_session(&self) -> (String, String) {
        let reply = self.login(self.app.admin_key(), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
        let csrf = reply.json()["csrf_token"].as_str().unwrap().to_string();
        (reply.session_cookie(), csrf)
    }

    async fn key_count(&self) -> usize {
        let (status, keys) = self.app.admin("GET", "/keys", None).await;
        assert_eq!(status, StatusCode::OK);
        keys["keys"].as_array().unwrap().len()
    }
}

fn on_disk(path: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(path),
    )
    .unwrap()
}

fn assert_security_headers(reply: &Reply) {
    assert_eq!(reply.header("content-security-policy"), Some(CSP));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
}

#[tokio::test]
async fn ui_files_are_served_with_their_types_etags_and_security_headers() {
    let ui = Ui::start().await;

    let index = ui.send("GET", "/", &[], None).await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.body, on_disk("index.html"));
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    assert_security_headers(&index);
    let etag = index.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // The browser revalidates: same content → 304 without a body; another tag → the file.
    let again = ui.send("GET", "/", &[("if-none-match", &etag)], None).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert_security_headers(&again);
    let stale = ui
        .send("GET", "/", &[("if-none-match", "\"something-else\"")], None)
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body, on_disk("index.html"));

    let script = ui.send("GET", "/assets/js/api.js", &[], None).await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(script.body, on_disk("js/api.js"));
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_ne!(script.header("etag"), Some(etag.as_str()));
    assert_security_headers(&script);

    for missing in ["/assets/js/nope.js", "/assets/README.md", "/assets/js"] {
        let reply = ui.send("GET", missing, &[], None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{missing}");
        assert_security_headers(&reply);
    }

    // The relay's unknown paths still answer in the caller's protocol, without UI headers.
    let unknown = ui
        .send("POST", "/v1/messages/batches", &[], Some("{}"))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["type"], "error");
    assert_eq!(unknown.json()["error"]["type"], "not_found_error");
    assert!(unknown.header("content-security-policy").is_none());
    let nothing = ui.send("GET", "/nothing-here", &[], None).await;
    assert_eq!(nothing.status, StatusCode::NOT_FOUND);
    assert!(nothing.header("content-security-policy").is_none());
}

#[tokio::test]
async fn login_refuses_wrong_keys_client_keys_the_control_token_and_bad_bodies() {
    let ui = Ui::start().await;
    let (_, client_key) = ui.app.create_key(json!({"name": "laptop"})).await;
    let control = ui.app.control_token().to_string();
    for wrong in [
        "cr_wrong-key-0000000000000000",
        client_key.as_str(),
        control.as_str(),
        "",
    ] {
        let reply = ui.login(wrong, &[]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert_eq!(reply.json()["error"]["code"], "unauthorized");
        assert!(reply.header("set-cookie").is_none());
        assert_security_headers(&reply);
    }
    let extra = json!({"key": ui.app.admin_key(), "remember": true}).to_string();
    for body in [extra.as_str(), "{}", "not json", "{\"key\": 1}"] {
        let reply = ui.send("POST", "/admin/session", &[], Some(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.json()["error"]["code"], "invalid_request", "{body}");
        assert!(reply.header("set-cookie").is_none(), "{body}");
    }
    let reply = ui.send("GET", "/admin/session", &[], None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let forged = ui
        .send(
            "GET",
            "/admin/session",
            &[("cookie", "relaybox_session=made-up")],
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_login_sets_a_strict_http_only_cookie_secure_behind_https() {
    let ui = Ui::start().await;
    let reply = ui.login(ui.app.admin_key(), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_security_headers(&reply);
    let body = reply.json();
    assert_eq!(body["key"]["id"], ui.app.admin_key_id());
    assert_eq!(body["key"]["name"], "admin");
    let csrf = body["csrf_token"].as_str().unwrap();
    assert!(csrf.len() >= 43, "{csrf}");
    let expires_at = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let in_12_hours = time::OffsetDateTime::now_utc() + time::Duration::hours(12);
    assert!((expires_at - in_12_hours).abs() < time::Duration::minutes(1));

    let cookie = reply.header("set-cookie").unwrap();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    let value = attributes[0].strip_prefix("relaybox_session=").unwrap();
    assert_eq!(value.len(), 43, "32 random bytes, base64url: {cookie}");
    for wanted in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=604800"] {
        assert!(attributes.contains(&wanted), "{wanted} in {cookie}");
    }
    assert!(!attributes.contains(&"Secure"), "plain http: {cookie}");

    let behind_tls = ui
        .login(ui.app.admin_key(), &[("x-forwarded-proto", "https")])
        .await;
    let cookie = behind_tls.header("set-cookie").unwrap();
    assert!(cookie.split(';').any(|a| a.trim() == "Secure"), "{cookie}");
    assert_ne!(behind_tls.session_cookie(), reply.session_cookie());
}

#[tokio::test]
async fn the_cookie_opens_the_admin_api_and_changes_need_the_csrf_token() {
    let ui = Ui::start().await;
    let (cookie, csrf) = ui.admin_session().await;
    let with_cookie = [("cookie", cookie.as_str())];

    let keys = ui.send("GET", "/admin/api/keys", &with_cookie, None).await;
    assert_eq!(keys.status, StatusCode::OK);
    let before = ui.key_count().await;

    let new_key = json!({"name": "from the browser"}).to_string();
    let no_token = ui
        .send("POST", "/admin/api/keys", &with_cookie, Some(&new_key))
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert_eq!(no_token.json()["error"]["code"], "csrf");
    let wrong = ui
        .send(
            "POST",
            "/admin/api/keys",
            &[("cookie", &cookie), ("x-csrf-token", "not-the-token")],
            Some(&new_key),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(ui.key_count().await, before, "nothing was created");

    let made = ui
        .send(
            "POST",
            "/admin/api/keys",
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            Some(&new_key),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json());
    assert_eq!(ui.key_count().await, before + 1);

    // After a reload the UI reads its token back.
    let current = ui.send("GET", "/admin/session", &with_cookie, None).await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.json()["csrf_token"], csrf);

    // Logging out needs the token too, then clears the cookie and ends the session.
    let refused = ui
        .send("DELETE", "/admin/session", &with_cookie, None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = ui
        .send(
            "DELETE",
            "/admin/session",
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let cleared = out.header("set-cookie").unwrap();
    assert!(cleared.starts_with("relaybox_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_security_headers(&out);
    let after = ui.send("GET", "/admin/api/keys", &with_cookie, None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let after = ui.send("GET", "/admin/session", &with_cookie, None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn disabling_the_admin_key_ends_its_session_for_good() {
    let ui = Ui::start().await;
    let (id, second_admin) = ui
        .app
        .create_key(json!({"name": "second admin", "isAdmin": true}))
        .await;
    let reply = ui.login(&second_admin, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["key"]["name"], "second admin");
    let cookie = reply.session_cookie();
    let with_cookie = [("cookie", cookie.as_str())];
    let ok = ui.send("GET", "/admin/api/keys", &with_cookie, None).await;
    assert_eq!(ok.status, StatusCode::OK);

    let path = format!("/keys/{id}");
    let (status, _) = ui
        .app
        .admin("PATCH", &path, Some(json!({"status": "disabled"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let ended = ui.send("GET", "/admin/api/keys", &with_cookie, None).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED);

    // Enabling the key again does not bring the session back.
    let (status, _) = ui
        .app
        .admin("PATCH", &path, Some(json!({"status": "active"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let still = ui.send("GET", "/admin/session", &with_cookie, None).await;
    assert_eq!(still.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ten_wrong_logins_block_the_address_for_login_and_bearer_alike() {
    let ui = Ui::start().await;
    for attempt in 0..10 {
        let reply = ui.login("cr_guess-000000000000", &[]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let blocked = ui.login(ui.app.admin_key(), &[]).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(blocked.json()["error"]["code"], "rate_limited");
    let retry_after: u64 = blocked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(blocked.header("set-cookie").is_none());
    let bearer = format!("Bearer {}", ui.app.admin_key());
    let api = ui
        .send(
            "GET",
            "/admin/api/keys",
            &[("authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_maximum_age() {
    let idle = Ui::start_with(SessionPolicy {
        idle: Duration::from_millis(1500),
        max: Duration::from_secs(60),
    })
    .await;
    let (cookie, _) = idle.admin_session().await;
    let with_cookie = [("cookie", cookie.as_str())];
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        let used = idle
            .send("GET", "/admin/api/keys", &with_cookie, None)
            .await;
        assert_eq!(
            used.status,
            StatusCode::OK,
            "each use restarts the idle time"
        );
    }
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let expired = idle
        .send("GET", "/admin/api/keys", &with_cookie, None)
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.json()["error"]["code"], "unauthorized");

    let capped = Ui::start_with(SessionPolicy {
        idle: Duration::from_secs(60),
        max: Duration::from_millis(2000),
    })
    .await;
    let (cookie, _) = capped.admin_session().await;
    let with_cookie = [("cookie", cookie.as_str())];
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let used = capped
            .send("GET", "/admin/session", &with_cookie, None)
            .await;
        assert_eq!(used.status, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let over = capped
        .send("GET", "/admin/session", &with_cookie, None)
        .await;
    assert_eq!(
        over.status,
        StatusCode::UNAUTHORIZED,
        "in use, but past its maximum age"
    );
}

/// One HTTP/1.1 request to the real server: (status, head with its case kept, body).
fn over_socket(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let host = url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\ncontent-type: application/json\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, raw[end + 4..].to_vec())
}

#[test]
fn the_real_server_serves_the_ui_and_sessions_over_its_socket() {
    let env = setup(json!({}));
    let url = &env.server.url;
    let (status, head, body) = over_socket(url, "GET", "/", &[], "");
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, on_disk("index.html"));
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-security-policy: {CSP}").to_ascii_lowercase()),
        "{head}"
    );

    let login = json!({ "key": common::ADMIN_KEY }).to_string();
    let (status, head, body) = over_socket(url, "POST", "/admin/session", &[], &login);
    assert_eq!(status, 200, "{head}");
    let csrf = serde_json::from_slice::<Value>(&body).unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = head
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (status, _, _) = over_socket(url, "GET", "/admin/api/keys", &[("cookie", &cookie)], "");
    assert_eq!(status, 200);
    let new_key = json!({"name": "socket"}).to_string();
    let (status, _, _) = over_socket(
        url,
        "POST",
        "/admin/api/keys",
        &[("cookie", &cookie)],
        &new_key,
    );
    assert_eq!(status, 403);
    let (status, _, _) = over_socket(
        url,
        "POST",
        "/admin/api/keys",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        &new_key,
    );
    assert_eq!(status, 201);
}

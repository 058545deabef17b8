//! The first hour with the CLI: commands run from the wrong folder, dry runs, duplicate names,
//! the admin key banner, log colours and levels, `--listen` typos, and channels managed from
//! the command line (against the mock upstream).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::wait::wait_for;
use common::{TestServer, relaybox, request, run_cli};
use relaybox_mock_upstream::{MockOptions, MockUpstream};
use serde_json::{Value, json};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// A data dir made the way users make one: `relaybox serve` started once and stopped.
fn served_data_dir(tmp: &Path) -> PathBuf {
    let data = tmp.join("data");
    TestServer::start(&data, &[]).stop();
    data
}

/// An error is one plain sentence: no log timestamp, no level, no colour codes.
#[track_caller]
fn assert_plain_error(output: &Output, contains: &str) {
    let text = stderr(output);
    assert!(!output.status.success(), "should fail: {text}");
    assert!(text.contains(contains), "stderr names '{contains}': {text}");
    assert!(
        text.starts_with("Error: "),
        "a sentence, not a log line: {text}"
    );
    assert!(!text.contains(" ERROR "), "not a log line: {text}");
    assert!(!text.contains('\x1b'), "no escape codes: {text:?}");
}

#[test]
fn every_command_refuses_a_missing_data_dir_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("data");
    let commands: &[&[&str]] = &[
        &["keys", "create", "--name", "laptop"],
        &["keys", "list"],
        &["keys", "show", "laptop"],
        &["keys", "update", "laptop", "--rpm", "5"],
        &["keys", "usage", "laptop"],
        &["keys", "disable", "laptop"],
        &["keys", "enable", "laptop"],
        &["keys", "delete", "laptop"],
        &["channels", "list"],
        &["channels", "show", "c"],
        &[
            "channels",
            "create",
            "--pool",
            "messages",
            "--name",
            "c",
            "--service-type",
            "claude",
            "--base-url",
            "http://127.0.0.1:9",
        ],
        &["channels", "update", "c", "--priority", "2"],
        &["channels", "enable", "c"],
        &["channels", "disable", "c"],
        &["channels", "delete", "c"],
        &["channels", "test", "c"],
    ];
    for args in commands {
        let output = run_cli(&missing, args);
        assert_plain_error(&output, "no relaybox data dir at");
        let text = stderr(&output);
        assert!(
            text.contains(&missing.display().to_string()),
            "{args:?} says where it looked: {text}"
        );
        assert!(
            text.contains("--data-dir") && text.contains("RELAYBOX_DATA_DIR"),
            "{args:?} says how to point elsewhere: {text}"
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }

    // The default ./data, run from a folder without one: the message shows the full path.
    let output = relaybox(&missing)
        .env_remove("RELAYBOX_DATA_DIR")
        .current_dir(tmp.path())
        .args(["keys", "list"])
        .output()
        .unwrap();
    assert_plain_error(&output, &tmp.path().join("data").display().to_string());
    // An existing folder that is not a data dir is not taken for one.
    std::fs::create_dir(&missing).unwrap();
    let output = run_cli(&missing, &["keys", "create", "--name", "laptop"]);
    assert_plain_error(&output, "holds no relaybox.redb");
    assert_eq!(std::fs::read_dir(&missing).unwrap().count(), 0);
}

fn cc_bridge_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cc-bridge")
}

fn crs_dump() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/claude-relay-service/redis-dump.json")
}

#[test]
fn dry_run_imports_leave_no_file_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir(&scratch).unwrap();
    let dry_runs: Vec<Vec<String>> = vec![
        vec![
            "import".into(),
            "cc-bridge".into(),
            cc_bridge_fixture().display().to_string(),
            "--dry-run".into(),
        ],
        vec![
            "import".into(),
            "claude-relay-service".into(),
            "--dump".into(),
            crs_dump().display().to_string(),
            "--crs-encryption-key".into(),
            "CRS-fixture-encryption-key-32chr".into(),
            "--dry-run".into(),
        ],
    ];
    for args in &dry_runs {
        let output = relaybox(&data)
            .env("TMPDIR", &scratch)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert!(
            stdout(&output)
                .to_lowercase()
                .contains("nothing was written"),
            "{}",
            stdout(&output)
        );
        assert!(!data.exists(), "{args:?} created the data dir");
        assert_eq!(
            std::fs::read_dir(&scratch).unwrap().count(),
            0,
            "{args:?} left its scratch data dir behind"
        );
    }

    // On an existing data dir, a dry run adds no file either.
    let data = served_data_dir(tmp.path());
    let before: Vec<_> = files(&data);
    for args in &dry_runs {
        let output = relaybox(&data).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert_eq!(files(&data), before, "{args:?}");
    }
    // The old meaning of --encryption-key (claude-relay-service's) is gone: without
    // --crs-encryption-key the import says what it needs.
    let output = run_cli(
        &data,
        &[
            "import",
            "claude-relay-service",
            "--dump",
            &crs_dump().display().to_string(),
            "--dry-run",
        ],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--crs-encryption-key"),
        "{}",
        stderr(&output)
    );
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn key_names_are_unique_through_the_cli_and_the_admin_api() {
    let tmp = tempfile::tempdir().unwrap();
    let data = served_data_dir(tmp.path());
    let created = run_cli(&data, &["keys", "create", "--name", "laptop"]);
    assert!(created.status.success(), "{}", stderr(&created));
    let again = run_cli(&data, &["keys", "create", "--name", "laptop"]);
    assert_plain_error(&again, "a key named 'laptop' exists already");
    let other = run_cli(&data, &["keys", "create", "--name", "phone", "--json"]);
    assert!(other.status.success());
    let rename = run_cli(&data, &["keys", "update", "phone", "--name", "laptop"]);
    assert_plain_error(&rename, "a key named 'laptop' exists already");

    let server = TestServer::start(&data, &[]);
    let (status, body) = server.admin("POST", "/keys", Some(&json!({"name": "laptop"})));
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string()
            .contains("a key named 'laptop' exists already"),
        "{body}"
    );
    let through_server = run_cli(&data, &["keys", "create", "--name", "phone"]);
    assert_plain_error(&through_server, "a key named 'phone' exists already");
    let (_, keys) = server.admin("GET", "/keys", None);
    let phone = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "phone")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = server.admin(
        "PATCH",
        &format!("/keys/{phone}"),
        Some(&json!({"name": "laptop"})),
    );
    assert_eq!(status, 409, "{body}");
    // Keeping one's own name is no conflict.
    let (status, body) = server.admin(
        "PATCH",
        &format!("/keys/{phone}"),
        Some(&json!({"name": "phone", "description": "mine"})),
    );
    assert_eq!(status, 200, "{body}");
    let shown = run_cli(&data, &["keys", "show", "laptop", "--json"]);
    assert!(shown.status.success(), "a unique name always finds its key");
    server.stop();
}

/// Start `serve` with no RELAYBOX_ADMIN_KEY on `listen`; its stderr goes to a file.
fn serve_without_admin_key(data: &Path, listen: &str, log: &Path) -> std::process::Child {
    relaybox(data)
        .args(["serve", "--listen", listen])
        .env("RELAYBOX_LOG_LEVEL", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn the_admin_key_is_printed_only_once_the_server_listens() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();

    let log = tmp.path().join("busy.log");
    let status = serve_without_admin_key(&data, &busy_addr, &log)
        .wait()
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "a busy port fails the start: {text}");
    assert!(text.contains("the address is in use"), "{text}");
    assert!(
        !text.contains("Admin key") && !text.contains("cr_"),
        "no key printed: {text}"
    );
    assert!(!text.contains("ERROR"), "the failure is a sentence: {text}");

    let log = tmp.path().join("free.log");
    let mut child = serve_without_admin_key(&data, "127.0.0.1:0", &log);
    let (key, url) = wait_for(Duration::from_secs(20), "the admin key banner", || {
        let text = std::fs::read_to_string(&log).ok()?;
        let key = text
            .split_whitespace()
            .find(|w| w.starts_with("cr_"))?
            .to_string();
        let url = text
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))?
            .to_string();
        Some((key, url))
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let listening = text.find("listening on").unwrap();
    let banner = text.find("Admin key").unwrap();
    assert!(listening < banner, "the banner follows the bind: {text}");
    assert!(
        text.contains("relaybox keys create --name NAME --admin"),
        "the banner says how to replace the key: {text}"
    );
    let (status, body) = request(
        "GET",
        &format!("{url}/admin/api/keys"),
        &[("authorization", &format!("Bearer {key}"))],
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "the printed key works: {body}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());

    // The next start has an admin key already: nothing is printed.
    let log = tmp.path().join("third.log");
    let mut child = serve_without_admin_key(&data, "127.0.0.1:0", &log);
    wait_for(Duration::from_secs(20), "the third start", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("listening on"))
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("Admin key") && !text.contains(&key),
        "{text}"
    );
}

/// Run `relaybox keys list` (with an unknown RELAYBOX_* variable, so a warning is logged)
/// under a pseudo-terminal (`script`), returning what the terminal showed.
fn on_a_terminal(data: &Path, no_color: Option<&str>) -> String {
    let mut script = std::process::Command::new("script");
    for (name, _) in std::env::vars() {
        if name.starts_with("RELAYBOX_") || name == "NO_COLOR" {
            script.env_remove(name);
        }
    }
    script
        .env("RELAYBOX_DATA_DIR", data)
        .env("RELAYBOX_TYPO_FOR_A_WARNING", "1")
        .args(["-qec", &format!("{} keys list", common::bin()), "/dev/null"])
        .stdin(Stdio::null());
    if let Some(value) = no_color {
        script.env("NO_COLOR", value);
    }
    let output = script.output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let tmp = tempfile::tempdir().unwrap();
    let data = served_data_dir(tmp.path());
    let piped = relaybox(&data)
        .env("RELAYBOX_TYPO_FOR_A_WARNING", "1")
        .env_remove("NO_COLOR")
        .args(["keys", "list"])
        .output()
        .unwrap();
    let text = stderr(&piped);
    assert!(text.contains("RELAYBOX_TYPO_FOR_A_WARNING"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no escape codes in a pipe: {text:?}"
    );

    let terminal = on_a_terminal(&data, None);
    assert!(
        terminal.contains("RELAYBOX_TYPO_FOR_A_WARNING"),
        "{terminal}"
    );
    assert!(
        terminal.contains('\x1b'),
        "colours on a terminal: {terminal:?}"
    );
    let no_color = on_a_terminal(&data, Some("1"));
    assert!(
        no_color.contains("RELAYBOX_TYPO_FOR_A_WARNING"),
        "{no_color}"
    );
    assert!(
        !no_color.contains('\x1b'),
        "NO_COLOR honoured: {no_color:?}"
    );
}

#[test]
fn an_unknown_log_level_and_a_bad_listen_address_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let flag = run_cli(&data, &["--log-level", "verbose", "serve"]);
    assert!(!flag.status.success());
    assert!(
        stderr(&flag).contains("unknown log level 'verbose'"),
        "{}",
        stderr(&flag)
    );
    let env = relaybox(&data)
        .env("RELAYBOX_LOG_LEVEL", "verbose")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!env.status.success());
    assert!(
        stderr(&env).contains("unknown log level 'verbose'"),
        "{}",
        stderr(&env)
    );
    assert!(!data.exists());

    for (listen, says) in [
        ("8080", "has no host: use 127.0.0.1:8080"),
        ("127.0.0.1", "has no port: use 127.0.0.1:8080"),
        ("127.0.0.1:http", "'http' is not a port number"),
        ("127.0.0.1:70000", "'70000' is not a port number"),
        (":8080", "has no host"),
        ("no-such-host.invalid:8080", "cannot be resolved"),
    ] {
        let output = run_cli(&data, &["serve", "--listen", listen]);
        assert_plain_error(&output, says);
        assert!(
            !stderr(&output).contains("another program"),
            "{}",
            stderr(&output)
        );
        assert!(!data.exists(), "--listen {listen} created the data dir");
    }
}

fn cli_json(data: &Path, args: &[&str]) -> Value {
    let output = run_cli(data, args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&output)))
}

/// create → update → disable → enable → test → delete, through one target.
fn channel_story(data: &Path, mock: &MockUpstream, name: &str) {
    let base = mock.base_url();
    let created = cli_json(
        data,
        &[
            "channels",
            "create",
            "--pool",
            "messages",
            "--name",
            name,
            "--service-type",
            "claude",
            "--base-url",
            &base,
            "--api-key",
            "sk-mock-0123456789abcdef",
            "--json",
        ],
    );
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "active");
    assert!(
        !created.to_string().contains("sk-mock-0123456789abcdef"),
        "masked"
    );

    let updated = cli_json(
        data,
        &[
            "channels",
            "update",
            name,
            "--priority",
            "7",
            "--map-model",
            "haiku=claude-sonnet-4-5",
            "--set",
            "rateLimitRpm=60",
            "--json",
        ],
    );
    assert_eq!(updated["priority"], 7);
    assert_eq!(updated["rateLimitRpm"], 60);
    assert_eq!(updated["modelMapping"]["haiku"], "claude-sonnet-4-5");
    assert_eq!(
        updated["apiKeys"], created["apiKeys"],
        "an update without --api-key keeps the keys"
    );

    let disabled = cli_json(data, &["channels", "disable", &id, "--json"]);
    assert_eq!(disabled["status"], "disabled");
    let enabled = cli_json(data, &["channels", "enable", name, "--json"]);
    assert_eq!(enabled["status"], "active");

    let before = mock.stats().total_requests;
    let tested = run_cli(data, &["channels", "test", name]);
    let text = stdout(&tested);
    assert!(tested.status.success(), "{text}{}", stderr(&tested));
    assert!(
        text.contains("OK") && text.contains("HTTP 200") && text.contains(" ms"),
        "{text}"
    );
    assert!(
        text.contains("claude-sonnet-4-5"),
        "the mapping applies: {text}"
    );
    assert_eq!(
        mock.stats().total_requests,
        before + 1,
        "one request upstream"
    );

    // Bad input is refused by the same checks as the admin API, and changes nothing.
    let bad_url = run_cli(data, &["channels", "update", name, "--base-url", "ftp://x"]);
    assert_plain_error(&bad_url, "baseUrl must start with http");
    let bad_field = run_cli(data, &["channels", "update", name, "--set", "bogusField=1"]);
    assert_plain_error(&bad_field, "bogusField");
    let shown = cli_json(data, &["channels", "show", &id, "--json"]);
    assert_eq!(shown["baseUrl"], base.as_str());

    let deleted = run_cli(data, &["channels", "delete", name]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_plain_error(&run_cli(data, &["channels", "show", &id]), "does not exist");
}

#[test]
fn channels_are_managed_and_tested_from_the_cli_with_and_without_a_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime
        .block_on(MockUpstream::start(MockOptions::default()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = served_data_dir(tmp.path());

    channel_story(&data, &mock, "offline-mock");
    let missing = run_cli(
        &data,
        &["channels", "create", "--pool", "messages", "--name", "x"],
    );
    assert_plain_error(&missing, "needs --service-type, --base-url");

    // A failing upstream: the test says so and exits non-zero.
    let failing = cli_json(
        &data,
        &[
            "channels",
            "create",
            "--pool",
            "chat",
            "--name",
            "failing",
            "--service-type",
            "openai",
            "--base-url",
            &mock.scenario_url("status=503"),
            "--api-key",
            "sk-x-0123456789",
            "--json",
        ],
    );
    let tested = run_cli(&data, &["channels", "test", "failing"]);
    assert!(!tested.status.success());
    assert!(
        stdout(&tested).contains("FAILED") && stdout(&tested).contains("HTTP 503"),
        "{}",
        stdout(&tested)
    );

    let server = TestServer::start(&data, &[]);
    channel_story(&data, &mock, "online-mock");
    let output = run_cli(
        &data,
        &[
            "channels",
            "test",
            failing["id"].as_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        !output.status.success(),
        "a failing upstream fails the test"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], 503, "{report}");
    // `--api-key -` reads the keys from stdin, out of the shell history.
    let mut child = relaybox(&data)
        .args([
            "channels",
            "create",
            "--pool",
            "gemini",
            "--name",
            "seen-by-server",
            "--service-type",
            "gemini",
            "--base-url",
            &mock.base_url(),
            "--api-key",
            "-",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        b"AIza-first-0123456789abcdef\n\nAIza-second-0123456789abcdef\n",
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(created["apiKeys"].as_array().unwrap().len(), 2, "{created}");
    assert!(!created.to_string().contains("AIza-first-0123456789abcdef"));
    let tested = run_cli(&data, &["channels", "test", "seen-by-server"]);
    assert!(tested.status.success(), "{}", stdout(&tested));
    assert!(
        stdout(&tested).contains("generateContent"),
        "{}",
        stdout(&tested)
    );
    let (status, channel) = server.admin(
        "GET",
        &format!("/channels/{}", created["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(
        status, 200,
        "the running server sees the channel at once: {channel}"
    );
    server.stop();
}

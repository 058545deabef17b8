//! A large, realistic `logs.sqlite` for the dashboard benchmark (bench/dashboard.sh): N request
//! rows over D days ending now, written through the library's own insert path
//! (`LogDb::insert_logs`, 10,000 rows per transaction), so the usage roll-ups are maintained
//! exactly as the relay maintains them.
//!
//! ```sh
//! cargo run --release --example gen_logs -- DATA_DIR [--rows N] [--days D] [--seed S] [--ids FILE]
//! ```
//!
//! Defaults: 10,000,000 rows over 90 days, seed 1. The mix: ~30 client keys (a few heavy ones),
//! 12 models, 8 channels; a key uses 1–3 models, a model is served by 1–2 channels; 4 client
//! endpoints; ~3 % 4xx/5xx with error texts; 60 % streams with a time to first token;
//! log-normal durations and token counts; sessions of a few dozen requests; costs from a price
//! per model. The same arguments give the same rows (a seeded xorshift; only the row times move
//! with "now").
//!
//! `--ids FILE` names keys and channels that exist in the configuration, so the admin API and
//! the UI show their names: lines `key <id> <name>` and `channel <id> <name>`. They are used
//! first (the first key listed is the heaviest); generated ids fill up the rest.
//!
//! The data dir's `logs.sqlite` must be new or empty (a partial earlier run is refused, so
//! rows are never counted twice), and no relaybox may be running on the data dir.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use relaybox::store::sqlite::{LogDb, OpenOptions, RequestLog};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const DEFAULT_ROWS: u64 = 10_000_000;
const DEFAULT_DAYS: u64 = 90;
const BATCH_ROWS: usize = 10_000;
const KEYS: usize = 30;
const CHANNELS: usize = 8;

const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// A model, its provider family and its price in US dollars per million tokens
/// (input, output, cache write, cache read).
struct Model {
    name: &'static str,
    family: Family,
    price: [f64; 4],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Claude,
    OpenAi,
    Gemini,
}

const MODELS: [Model; 12] = [
    Model {
        name: "claude-sonnet-4-5",
        family: Family::Claude,
        price: [3.0, 15.0, 3.75, 0.3],
    },
    Model {
        name: "claude-opus-4-1",
        family: Family::Claude,
        price: [15.0, 75.0, 18.75, 1.5],
    },
    Model {
        name: "claude-haiku-4-5",
        family: Family::Claude,
        price: [1.0, 5.0, 1.25, 0.1],
    },
    Model {
        name: "claude-sonnet-4",
        family: Family::Claude,
        price: [3.0, 15.0, 3.75, 0.3],
    },
    Model {
        name: "gpt-5",
        family: Family::OpenAi,
        price: [1.25, 10.0, 0.0, 0.125],
    },
    Model {
        name: "gpt-5-mini",
        family: Family::OpenAi,
        price: [0.25, 2.0, 0.0, 0.025],
    },
    Model {
        name: "gpt-4.1",
        family: Family::OpenAi,
        price: [2.0, 8.0, 0.0, 0.5],
    },
    Model {
        name: "gpt-4o-mini",
        family: Family::OpenAi,
        price: [0.15, 0.6, 0.0, 0.075],
    },
    Model {
        name: "o4-mini",
        family: Family::OpenAi,
        price: [1.1, 4.4, 0.0, 0.275],
    },
    Model {
        name: "gemini-2.5-pro",
        family: Family::Gemini,
        price: [1.25, 10.0, 0.0, 0.31],
    },
    Model {
        name: "gemini-2.5-flash",
        family: Family::Gemini,
        price: [0.3, 2.5, 0.0, 0.075],
    },
    Model {
        name: "gemini-2.0-flash",
        family: Family::Gemini,
        price: [0.1, 0.4, 0.0, 0.025],
    },
];

/// Failures: (weight, http status, outcome, relaybox's error, the upstream's error).
const FAILURES: [(u32, i64, &str, &str, &str); 7] = [
    (
        30,
        429,
        "error",
        "upstream rate limited the request",
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#,
    ),
    (
        20,
        529,
        "error",
        "upstream overloaded",
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    ),
    (
        15,
        502,
        "error",
        "upstream unreachable: connection reset by peer",
        "",
    ),
    (
        10,
        500,
        "error",
        "upstream answered 500",
        r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error"}}"#,
    ),
    (
        10,
        400,
        "error",
        "upstream refused the request",
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 215031 tokens > 200000 maximum"}}"#,
    ),
    (10, 504, "error", "deadline exceeded after 3 attempts", ""),
    (5, 403, "rejected", "model not allowed for this key", ""),
];

/// xorshift64*: small, fast and deterministic; plenty for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // A zero state would stay zero.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    #[expect(clippy::cast_precision_loss, reason = "53 random bits")]
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n as u64).unwrap_or(0)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Log-normal with this median and spread (sigma of the underlying normal), Box–Muller.
    fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * normal).exp()
    }

    /// An index into `weights`, in proportion to them.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut pick = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if pick < *w {
                return i;
            }
            pick -= w;
        }
        weights.len() - 1
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut text = format!("{:016x}{:016x}", self.next_u64(), self.next_u64());
        text.truncate(digits);
        text
    }
}

struct Key {
    id: String,
    weight: f64,
    /// Indexes into MODELS, and how often each is used.
    models: Vec<usize>,
    model_weights: Vec<f64>,
    /// The endpoint its tool speaks (most of its requests).
    endpoint: &'static str,
    session: String,
    session_left: u32,
}

struct Channel {
    id: String,
    name: String,
}

/// Who sends what: keys, channels and which channels serve each model.
struct World {
    keys: Vec<Key>,
    key_weights: Vec<f64>,
    channels: Vec<Channel>,
    /// Per model: the channels serving it (1 or 2).
    routes: Vec<Vec<usize>>,
}

impl World {
    fn new(rng: &mut Rng, known: Known) -> Self {
        let channels: Vec<Channel> = (0..CHANNELS)
            .map(|i| {
                known.channels.get(i).map_or_else(
                    || Channel {
                        id: rng.hex(8),
                        name: format!("upstream-{}", i + 1),
                    },
                    |(id, name)| Channel {
                        id: id.clone(),
                        name: name.clone(),
                    },
                )
            })
            .collect();
        let routes = (0..MODELS.len())
            .map(|m| {
                let first = m % CHANNELS;
                if rng.chance(0.5) {
                    vec![first, (first + 1 + rng.below(CHANNELS - 1)) % CHANNELS]
                } else {
                    vec![first]
                }
            })
            .collect();
        let keys: Vec<Key> = (0..KEYS)
            .map(|i| {
                let id = known
                    .keys
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| uuid_at(rng, 1_700_000_000_000 + i as u64));
                let wanted = 1 + rng.below(3);
                let mut models = Vec::new();
                while models.len() < wanted {
                    let m = rng.below(MODELS.len());
                    if !models.contains(&m) {
                        models.push(m);
                    }
                }
                let model_weights = (0..models.len()).map(|j| 1.0 / (j as f64 + 1.0)).collect();
                let endpoint = match MODELS[models[0]].family {
                    Family::Claude => "/v1/messages",
                    Family::OpenAi if rng.chance(0.5) => "/v1/responses",
                    Family::OpenAi => "/v1/chat/completions",
                    Family::Gemini => "/v1beta/models:streamGenerateContent",
                };
                Key {
                    id,
                    // Zipf-like: the first few keys carry most of the traffic.
                    weight: 1.0 / (i as f64 + 1.0).powf(1.2),
                    models,
                    model_weights,
                    endpoint,
                    session: String::new(),
                    session_left: 0,
                }
            })
            .collect();
        let key_weights = keys.iter().map(|k| k.weight).collect();
        Self {
            keys,
            key_weights,
            channels,
            routes,
        }
    }

    /// Row `n` of the run, started at `at_ms` (unix milliseconds).
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "durations and token counts are small"
    )]
    fn row(&mut self, rng: &mut Rng, at_ms: i64) -> RequestLog {
        let k = rng.weighted(&self.key_weights);
        let key = &mut self.keys[k];
        let model_index = key.models[rng.weighted(&key.model_weights)];
        let model = &MODELS[model_index];
        if key.session_left == 0 {
            key.session = format!("session-{}", rng.hex(16));
            key.session_left = 1 + rng.log_normal(25.0, 0.8) as u32;
        }
        key.session_left -= 1;
        let route = &self.routes[model_index];
        let channel = &self.channels[route[rng.below(route.len())]];
        let stream = rng.chance(0.6);
        let mut endpoint = if rng.chance(0.8) {
            key.endpoint
        } else {
            [
                "/v1/messages",
                "/v1/chat/completions",
                "/v1/responses",
                "/v1beta/models:generateContent",
            ][rng.below(4)]
        };
        if endpoint.starts_with("/v1beta") {
            endpoint = if stream {
                "/v1beta/models:streamGenerateContent"
            } else {
                "/v1beta/models:generateContent"
            };
        }
        let (provider, provider_name) = match model.family {
            Family::Claude => ("claude", "api.anthropic.com"),
            Family::OpenAi if endpoint == "/v1/responses" => ("responses", "api.openai.com"),
            Family::OpenAi => ("openai", "api.openai.com"),
            Family::Gemini => ("gemini", "generativelanguage.googleapis.com"),
        };
        let failure = rng.chance(0.03).then(|| {
            let weights: Vec<f64> = FAILURES.iter().map(|f| f64::from(f.0)).collect();
            FAILURES[rng.weighted(&weights)]
        });
        let disconnect = failure.is_none() && rng.chance(0.004);

        let (mut input, mut output, mut cache_write, mut cache_read) = (0i64, 0i64, 0i64, 0i64);
        let mut duration_ms = rng.log_normal(if stream { 4_000.0 } else { 1_800.0 }, 0.9) as i64;
        let mut first_token_ms = None;
        if failure.is_none() {
            input = rng.log_normal(3_000.0, 1.2) as i64 + 1;
            output = rng.log_normal(350.0, 1.0) as i64 + 1;
            if model.family == Family::Claude {
                if rng.chance(0.55) {
                    cache_read = rng.log_normal(20_000.0, 0.8) as i64;
                }
                if rng.chance(0.12) {
                    cache_write = rng.log_normal(4_000.0, 0.8) as i64;
                }
            } else if rng.chance(0.4) {
                cache_read = rng.log_normal(8_000.0, 0.8) as i64;
            }
            if stream {
                let ttft = (rng.log_normal(700.0, 0.6) as i64).max(40);
                first_token_ms = Some(ttft);
                duration_ms = duration_ms.max(ttft + 20);
            }
            if disconnect {
                output /= 3;
            }
        } else {
            duration_ms /= 4;
        }
        let cost = |tokens: i64, per_million: f64| tokens as f64 * per_million / 1_000_000.0;
        let input_cost = cost(input, model.price[0]);
        let output_cost = cost(output, model.price[1]);
        let cache_creation_cost = cost(cache_write, model.price[2]);
        let cache_read_cost = cost(cache_read, model.price[3]);
        let (http_status, status, error, upstream_error) = match failure {
            Some((_, code, outcome, error, upstream)) => (code, outcome, error, upstream),
            None if disconnect => (200, "client_disconnect", "client went away", ""),
            None => (200, "success", "", ""),
        };
        RequestLog {
            id: uuid_at(rng, u64::try_from(at_ms).unwrap_or(0)),
            status: status.into(),
            initial_time: timestamp(at_ms),
            first_token_time: first_token_ms.map(|t| timestamp(at_ms + t)),
            complete_time: Some(timestamp(at_ms + duration_ms)),
            duration_ms,
            provider: provider.into(),
            provider_name: provider_name.into(),
            model: model.name.into(),
            response_model: if failure.is_none() {
                model.name.into()
            } else {
                String::new()
            },
            input_tokens: input,
            output_tokens: output,
            cache_creation_input_tokens: cache_write,
            cache_read_input_tokens: cache_read,
            total_tokens: input + output + cache_write + cache_read,
            price: input_cost + output_cost + cache_creation_cost + cache_read_cost,
            input_cost,
            output_cost,
            cache_creation_cost,
            cache_read_cost,
            http_status,
            stream,
            channel_id: channel.id.clone(),
            channel_name: channel.name.clone(),
            endpoint: endpoint.into(),
            client_id: key.id.clone(),
            session_id: key.session.clone(),
            error: error.into(),
            upstream_error: upstream_error.into(),
            failover_info: String::new(),
            unpriced: false,
        }
    }
}

/// A UUIDv7 (simple form, like the relay's ids) for this unix millisecond: ids grow with time
/// as the relay's do, so the id index is appended to, not written all over.
fn uuid_at(rng: &mut Rng, unix_ms: u64) -> String {
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    random[8..].copy_from_slice(&rng.next_u64().to_le_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(unix_ms, &random)
        .into_uuid()
        .simple()
        .to_string()
}

fn timestamp(unix_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(TIMESTAMP).ok())
        .unwrap_or_default()
}

/// Keys and channels of the configuration (`--ids`).
#[derive(Default)]
struct Known {
    keys: Vec<String>,
    channels: Vec<(String, String)>,
}

fn read_known(path: &PathBuf) -> anyhow::Result<Known> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut known = Known::default();
    for (n, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["key", id, _name @ ..] => known.keys.push((*id).to_string()),
            ["channel", id, name, ..] => known
                .channels
                .push(((*id).to_string(), (*name).to_string())),
            _ => bail!(
                "{}:{}: expected `key <id> <name>` or `channel <id> <name>`, got `{line}`",
                path.display(),
                n + 1
            ),
        }
    }
    Ok(known)
}

struct Args {
    data_dir: PathBuf,
    rows: u64,
    days: u64,
    seed: u64,
    ids: Option<PathBuf>,
}

const USAGE: &str = "usage: gen_logs DATA_DIR [--rows N] [--days D] [--seed S] [--ids FILE]";

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut data_dir = None;
    let (mut rows, mut days, mut seed, mut ids) = (DEFAULT_ROWS, DEFAULT_DAYS, 1, None);
    let number = |name: &str, value: Option<String>| -> anyhow::Result<u64> {
        let text = value.with_context(|| format!("{name} needs a value\n{USAGE}"))?;
        let n: u64 = text
            .replace('_', "")
            .parse()
            .with_context(|| format!("{name} must be a whole number, not '{text}'"))?;
        if n == 0 {
            bail!("{name} must be at least 1");
        }
        Ok(n)
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => rows = number("--rows", args.next())?,
            "--days" => days = number("--days", args.next())?,
            "--seed" => seed = number("--seed", args.next())?,
            "--ids" => ids = Some(PathBuf::from(args.next().context("--ids needs a file")?)),
            "-h" | "--help" => bail!("{USAGE}"),
            other if other.starts_with('-') => bail!("unknown option {other}\n{USAGE}"),
            other if data_dir.is_none() => data_dir = Some(PathBuf::from(other)),
            other => bail!("unexpected argument {other}\n{USAGE}"),
        }
    }
    Ok(Args {
        data_dir: data_dir.context(USAGE)?,
        rows,
        days,
        seed,
        ids,
    })
}

#[expect(clippy::print_stdout, reason = "a benchmark tool reports on stdout")]
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "row counts and spans are far below 2^52"
)]
fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let known = match &args.ids {
        Some(path) => read_known(path)?,
        None => Known::default(),
    };
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let path = args.data_dir.join("logs.sqlite");
    let db = LogDb::open(&path, OpenOptions::default())
        .with_context(|| format!("opening {}", path.display()))?;
    let existing = db.count_logs()?;
    if existing > 0 {
        bail!(
            "{} already holds {existing} rows; use a new data dir (rows would be counted twice)",
            path.display()
        );
    }

    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let span_ms = (args.days * 86_400_000) as f64;
    let start_ms = now_ms - span_ms as i64;
    let step_ms = span_ms / args.rows as f64;
    let rows = args.rows;
    let seed = args.seed;

    // Rows are made on a second thread while this one writes, two batches ahead at most.
    let (send, receive) = mpsc::sync_channel::<Vec<RequestLog>>(2);
    let producer = std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut world = World::new(&mut rng, known);
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        for n in 0..rows {
            // Evenly spread with jitter; times never go back, like a relay's.
            let at = start_ms + ((n as f64 + rng.unit() * 0.999) * step_ms) as i64;
            batch.push(world.row(&mut rng, at));
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                if send.send(full).is_err() {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = send.send(batch);
        }
    });

    let started = Instant::now();
    let mut written: u64 = 0;
    let mut next_report = rows / 10;
    for batch in receive {
        written += db.insert_logs(&batch)? as u64;
        if written >= next_report && written < rows {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  {written} rows, {:.0} rows/s",
                written as f64 / secs.max(1e-9)
            );
            next_report += rows / 10;
        }
    }
    if producer.join().is_err() {
        bail!("the row generator failed");
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Fold the WAL into the file, so the server starts on a plain database.
    db.lock()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let size_mb = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
    println!(
        "gen_logs: {written} rows over {} days into {} ({size_mb:.0} MB) in {elapsed:.1} s",
        args.days,
        path.display()
    );
    println!(
        "RESULT rows={written} seconds={elapsed:.1} rows_per_sec={:.0} mb={size_mb:.0}",
        written as f64 / elapsed.max(1e-9)
    );
    if written != rows {
        bail!("wrote {written} rows, expected {rows}");
    }
    Ok(())
}

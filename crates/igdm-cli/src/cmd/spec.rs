//! `igdm spec validate|run`: check a connector file, and run one of its
//! actions by hand (or only print the request it would send).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use igdm_spec::{
    Connector, ExecError, Executor, HttpRequest, ParamSpec, ParamType, ReqwestTransport, Session,
};
use serde_json::{Map, Value, json};

use crate::Global;

/// Exit code for a connector file that does not load.
const EXIT_BAD_SPEC: u8 = 2;

/// Connector spec commands.
#[derive(Debug, clap::Subcommand)]
pub enum SpecCommand {
    /// Load a connector file and list its actions (exit code 2 when it does not load).
    Validate {
        /// The connector file.
        file: PathBuf,
    },
    /// Run one action of a connector file and print the mapped result as JSON.
    Run(RunArgs),
}

/// Options of `igdm doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Map the exchanges recorded into DIR (`IGDM_RECORD=DIR`, `igdm request
    /// --record DIR`) through the connectors, offline; exit code 1 when one
    /// no longer maps.
    #[arg(long, value_name = "DIR")]
    pub replay: PathBuf,
    /// A connector file to use instead of the built-in connector with its id.
    #[arg(long, value_name = "FILE")]
    pub connector: Option<PathBuf>,
}

/// Runs `igdm doctor`.
pub fn doctor(args: &DoctorArgs, global: &Global) -> anyhow::Result<ExitCode> {
    replay(&args.replay, args.connector.as_deref(), global)
}

/// Options of `igdm spec run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The connector file.
    pub file: PathBuf,
    /// The action to run.
    pub action: String,
    /// A parameter as NAME=VALUE (repeatable). VALUE is read as JSON when it
    /// parses (numbers, arrays), else as text; parameters typed `string` always
    /// keep the raw text (ids).
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Send every request to this base URL instead of the connector's hosts.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<igdm_spec::Url>,
    /// A JSON file with `{"cookies": {name: value}}` or `{"access_token": "…"}`
    /// (optionally `device_uuid` and `auth` extras such as `ig_www_claim`).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// Print the request (credentials redacted) instead of sending it.
    #[arg(long)]
    pub print_request: bool,
}

/// Runs a spec command.
pub async fn run(cmd: SpecCommand, global: &Global) -> anyhow::Result<ExitCode> {
    match cmd {
        SpecCommand::Validate { file } => validate(&file, global),
        SpecCommand::Run(args) => run_action(args, global).await,
    }
}

/// `igdm doctor --replay`: one line (or one JSON item) per recording.
fn replay(dir: &Path, file: Option<&Path>, global: &Global) -> anyhow::Result<ExitCode> {
    let own = match file {
        None => None,
        Some(f) => match load(f)? {
            Ok(c) => Some(Arc::new(c)),
            Err(code) => return Ok(code),
        },
    };
    // Connectors installed into the home (`accounts add --connector-file`)
    // resolve as they do for the accounts that recorded; without a readable
    // home, the embedded ones still do.
    let home = igdm_runtime::Runtime::from_env().ok();
    let results = igdm::replay::replay_dir(dir, |id| match (&own, &home) {
        (Some(c), _) if c.id == id => Some(c.clone()),
        (_, Some(rt)) => rt.connector(id).ok(),
        (_, None) => igdm_runtime::connector(id).ok(),
    })
    .with_context(|| format!("cannot read recordings in {}", dir.display()))?;
    let failed = results.iter().filter(|r| !r.ok).count();
    if global.json {
        println!("{}", json!({"items": results, "failed": failed}));
    } else {
        for r in &results {
            let what = format!(
                "{} {}",
                r.connector.as_deref().unwrap_or("?"),
                r.action.as_deref().unwrap_or("(raw request)")
            );
            if r.ok {
                println!("ok    {}  {what}  {} item(s)", r.file.display(), r.items);
            } else {
                println!("FAIL  {}  {what}", r.file.display());
                for p in &r.problems {
                    println!("      {p}");
                }
            }
        }
        println!("{} recording(s), {failed} failed", results.len());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Loads a connector file; a load error is printed as `FILE:line:column: message`.
fn load(file: &Path) -> anyhow::Result<Result<Connector, ExitCode>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match Connector::load(&text, &file.display().to_string()) {
        Ok(c) => Ok(Ok(c)),
        Err(e) => {
            eprintln!("{e}");
            Ok(Err(ExitCode::from(EXIT_BAD_SPEC)))
        }
    }
}

fn param_summary(name: &str, p: &ParamSpec) -> String {
    let mut s = format!("{name}: {}", p.kind.name());
    if p.required {
        s.push_str(" (required)");
    }
    if let Some(d) = &p.default {
        s.push_str(&format!(" = {d}"));
    }
    s
}

fn validate(file: &Path, global: &Global) -> anyhow::Result<ExitCode> {
    let connector = match load(file)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if global.json {
        let actions: Vec<Value> = connector
            .actions()
            .map(|a| {
                let params: Map<String, Value> = a
                    .params()
                    .iter()
                    .map(|(n, p)| {
                        (n.clone(), json!({"type": p.kind.name(), "required": p.required, "default": p.default}))
                    })
                    .collect();
                json!({"name": a.name(), "readonly": a.readonly(), "method": a.method().as_str(), "params": params})
            })
            .collect();
        println!("{}", json!({"id": connector.id, "name": connector.name, "actions": actions}));
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} ({} actions)", connector.id, connector.actions().count());
    for a in connector.actions() {
        let params: Vec<String> = a.params().iter().map(|(n, p)| param_summary(n, p)).collect();
        let mode = if a.readonly() { "read " } else { "write" };
        println!("  {:<20} {mode}  {}", a.name(), params.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `NAME=VALUE` pairs against the action's declared parameters.
pub(crate) fn parse_params(
    raw: &[String],
    kind_of: impl Fn(&str) -> Option<ParamType>,
) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in raw {
        let (name, value) =
            pair.split_once('=').with_context(|| format!("--param `{pair}` is not NAME=VALUE"))?;
        let keep_text = kind_of(name) == Some(ParamType::String);
        let v = if keep_text {
            Value::String(value.to_owned())
        } else {
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()))
        };
        out.insert(name.to_owned(), v);
    }
    Ok(out)
}

/// Reads the credentials file into a session.
fn read_credentials(file: &Path) -> anyhow::Result<Session> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let mut session = Session::new();
    if let Some(cookies) = v.get("cookies") {
        let cookies = cookies.as_object().context("`cookies` must be an object of name: value")?;
        for (k, val) in cookies {
            let val = val.as_str().with_context(|| format!("cookie `{k}` must be a string"))?;
            session.set_cookie(k.clone(), val);
        }
    }
    if let Some(t) = v.get("access_token") {
        session.set_access_token(t.as_str().context("`access_token` must be a string")?);
    }
    if let Some(extras) = v.get("auth").and_then(Value::as_object) {
        for (k, val) in extras {
            if let Some(s) = val.as_str() {
                session.set_extra(k.clone(), s);
            }
        }
    }
    let uuid = v.get("device_uuid").and_then(Value::as_str).map(str::to_owned);
    Ok(match uuid {
        Some(u) => session.with_device_uuid(u),
        None => session,
    })
}

fn print_request(req: &HttpRequest, json_out: bool) {
    let body = String::from_utf8_lossy(&req.body);
    if json_out {
        let headers: Vec<Value> =
            req.redacted_headers().into_iter().map(|(k, v)| json!([k, v])).collect();
        println!(
            "{}",
            json!({"method": req.method.as_str(), "url": req.url.as_str(), "headers": headers, "body": body})
        );
        return;
    }
    println!("{} {}", req.method, req.url);
    for (k, v) in req.redacted_headers() {
        println!("{k}: {v}");
    }
    if !body.is_empty() {
        println!();
        println!("{body}");
    }
}

async fn run_action(args: RunArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let connector = match load(&args.file)? {
        Ok(c) => Arc::new(c),
        Err(code) => return Ok(code),
    };
    let action = connector.action(&args.action).with_context(|| {
        let names: Vec<&str> = connector.actions().map(|a| a.name()).collect();
        format!(
            "no action `{}` in {} (actions: {})",
            args.action,
            args.file.display(),
            names.join(", ")
        )
    })?;
    let params = parse_params(&args.params, |n| action.params().get(n).map(|p| p.kind))?;
    let mut session = match &args.credentials {
        Some(f) => read_credentials(f)?,
        None => Session::new(),
    };
    if session.device_uuid().is_none() {
        tracing::warn!("no device_uuid in the credentials: using a random one for this run");
        session = session.with_device_uuid(Session::new_device_uuid());
    }
    let transport = ReqwestTransport::new().context("cannot set up HTTP")?;
    let exec =
        Executor::new(connector.clone(), Arc::new(transport)).with_base_url(args.base_url.clone());
    if args.print_request {
        let req = exec.build_request(&args.action, &params, &session).map_err(describe)?;
        print_request(&req, global.json);
        return Ok(ExitCode::SUCCESS);
    }
    let out = exec.execute(&args.action, &params, &mut session).await.map_err(describe)?;
    if global.json {
        println!("{}", json!({"data": out.data, "page": out.page, "warnings": out.warnings}));
    } else {
        println!("{}", serde_json::to_string_pretty(&out.data)?);
        if let Some(p) = &out.page {
            eprintln!("page: next_cursor={:?} has_more={}", p.next_cursor, p.has_more);
        }
        for w in &out.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An execution error with its class and remediation.
fn describe(e: ExecError) -> anyhow::Error {
    let api = e.to_api_error();
    let mut msg = format!("{e}");
    if e.outcome_unknown() {
        msg.push_str(" (the request may have been received: check before retrying)");
    }
    anyhow::anyhow!("{msg}\n[{}] {}", api.class, api.remediation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_keep_string_ids_and_parse_the_rest() {
        let c = Connector::load(
            "id: t\nactions:\n  a:\n    params:\n      id: {type: string}\n      n: {type: number}\n      ids: {type: array}\n    rest: {method: GET, url: 'https://x.test/'}\n",
            "t.yaml",
        )
        .unwrap();
        let declared = c.action("a").unwrap().params();
        let raw = ["id=00123".to_owned(), "n=20".to_owned(), "ids=[\"1\",\"2\"]".to_owned()];
        let kind_of = |n: &str| declared.get(n).map(|p| p.kind);
        let got = parse_params(&raw, kind_of).unwrap();
        assert_eq!(Value::Object(got), json!({"id": "00123", "n": 20, "ids": ["1", "2"]}));
        assert!(parse_params(&["oops".to_owned()], kind_of).is_err());
    }
}

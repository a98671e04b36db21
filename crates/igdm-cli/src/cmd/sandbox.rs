//! `igdm sandbox`: serve the local Instagram emulator until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use igdm_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::Global;

/// Options of `igdm sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub addr: SocketAddr,
    /// Load a data set at start (`demo`: two accounts, customers and conversations).
    #[arg(long, value_parser = ["demo"])]
    pub seed: Option<String>,
}

/// Runs the sandbox until interrupted.
pub async fn run(args: SandboxArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxConfig::default());
    let running = sandbox
        .serve(args.addr)
        .await
        .with_context(|| format!("starting the sandbox on {}", args.addr))?;
    let base = running.base_url();
    let seed = match args.seed.as_deref() {
        Some("demo") => {
            Some(serde_json::to_value(sandbox.seed_demo().await.context("loading the demo seed")?)?)
        }
        _ => None,
    };
    let summary = json!({
        "base_url": base,
        "private_api": format!("{base}/api/v1/"),
        "login_page": format!("{base}/accounts/login/"),
        "control_api": format!("{base}/_sandbox/"),
        "seed": seed,
    });
    if global.json {
        println!("{summary}");
    } else {
        print_text(&summary);
    }
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    eprintln!("stopping the sandbox");
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn print_text(summary: &Value) {
    println!("igdm sandbox listening on {}", s(&summary["base_url"]));
    println!("  private API   {}", s(&summary["private_api"]));
    println!("  login page    {}", s(&summary["login_page"]));
    println!("  control API   {}", s(&summary["control_api"]));
    let seed = &summary["seed"];
    if seed.is_null() {
        println!("No data yet: create accounts with POST {}accounts", s(&summary["control_api"]));
    } else {
        let b = &seed["business"];
        println!();
        println!("Business account @{} (id {})", s(&b["username"]), s(&b["id"]));
        println!("  access_token  {}", s(&b["access_token"]));
        println!("  page_id       {}", s(&b["page_id"]));
        println!("  page_token    {}", s(&b["page_token"]));
        let p = &seed["personal"];
        println!("Personal account @{} (id {})", s(&p["username"]), s(&p["id"]));
        println!("  password      {}", s(&p["password"]));
        println!("  Cookie        {}", s(&p["cookie_header"]));
        println!("  X-CSRFToken   {}", s(&p["cookies"]["csrftoken"]));
        if let Some(customers) = seed["customers"].as_array() {
            let names: Vec<String> = customers
                .iter()
                .map(|c| format!("@{} ({})", s(&c["username"]), s(&c["id"])))
                .collect();
            println!("Customers: {}", names.join(", "));
        }
    }
    println!();
    println!("Press Ctrl-C to stop.");
}

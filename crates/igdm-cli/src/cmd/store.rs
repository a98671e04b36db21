//! `igdm sync` and `igdm export`: the local mirror.

use std::io::Write as _;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use igdm::{SyncOptions, SyncProgress, sync};
use igdm_store::ConversationFilter;

use super::output;
use crate::Global;
use igdm_runtime::Runtime;

/// `igdm sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Read every conversation back to the start of its history.
    #[arg(long)]
    pub full: bool,
}

/// `igdm export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_parser = ["jsonl", "csv"], default_value = "jsonl")]
    pub format: String,
}

/// Runs `igdm sync`.
pub async fn sync_cmd(args: SyncArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let ctx = Runtime::from_env()?;
    let store = ctx.store().await?;
    let opened = ctx.open(global.account.as_deref()).await?;
    let bar = if global.json { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} conversations")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut messages = 0u64;
    let opts = SyncOptions { full: args.full, ..SyncOptions::default() };
    let result = sync(opened.client(), &*store, &opts, &mut |p| match p {
        SyncProgress::Conversations(n) => bar.set_length(n),
        SyncProgress::Conversation { index, total, .. } => {
            bar.set_length(total);
            bar.set_position(index.saturating_sub(1));
        }
        SyncProgress::Messages(n) => {
            messages = n;
            bar.set_message(format!("{messages} messages"));
        }
    })
    .await;
    bar.finish_and_clear();
    opened.finish().await?;
    match result {
        Ok((report, _)) => {
            if global.json {
                println!("{}", serde_json::to_value(&report)?);
            } else {
                println!(
                    "synced {} conversations, {} messages written ({} pages; {} complete back to the start)",
                    report.conversations, report.messages, report.pages, report.completed
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(output::client_error(global.json, &e)),
    }
}

/// Runs `igdm export`: every stored message of the account, one per line.
pub async fn export(args: ExportArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let ctx = Runtime::from_env()?;
    let account = ctx.account(global.account.as_deref())?;
    let store = ctx.store().await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.format == "csv" {
        writeln!(out, "conversation_id,message_id,timestamp,sender_id,is_self,content_type,text")?;
    }
    let mut conv_cursor: Option<String> = None;
    loop {
        let convs = store
            .list_conversations(
                &account.name,
                &ConversationFilter::default(),
                100,
                conv_cursor.as_deref(),
            )
            .await?;
        for c in &convs.items {
            let mut cursor: Option<String> = None;
            loop {
                let page = store
                    .list_messages(&account.name, c.id.as_str(), 500, cursor.as_deref())
                    .await?;
                for m in &page.items {
                    if args.format == "csv" {
                        writeln!(
                            out,
                            "{},{},{},{},{},{},{}",
                            csv(c.id.as_str()),
                            csv(m.id.as_str()),
                            m.timestamp,
                            csv(m.sender.id.as_str()),
                            m.sender.is_self,
                            csv(m.content_type.as_str()),
                            csv(m.text.as_deref().unwrap_or(""))
                        )?;
                    } else {
                        writeln!(out, "{}", json!(m))?;
                    }
                }
                match page.next_cursor {
                    Some(n) if page.has_more => cursor = Some(n),
                    _ => break,
                }
            }
        }
        match convs.next_cursor {
            Some(n) if convs.has_more => conv_cursor = Some(n),
            _ => break,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

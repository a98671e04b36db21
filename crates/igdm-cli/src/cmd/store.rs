//! `igdm sync` and `igdm export`: the local mirror.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use igdm::{SyncOptions, SyncProgress, sync, sync_with_media};
use igdm_store::{ConversationFilter, MediaRef};

use super::output;
use crate::Global;
use igdm_runtime::Runtime;

/// `igdm sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Read every conversation back to the start of its history.
    #[arg(long)]
    pub full: bool,
    /// Also keep the media of the account's messages (photos, videos, voice
    /// notes) in the media store, refreshing expired links.
    #[arg(long)]
    pub media: bool,
}

/// `igdm export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_parser = ["jsonl", "csv"], default_value = "jsonl")]
    pub format: String,
    /// Write the export to this file instead of stdout; kept media are
    /// copied into `media/` beside it.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Copy kept media into this directory (default with --output: `media/`
    /// beside the file). Each message links its files by a path relative to
    /// the export file (or as given, on stdout).
    #[arg(long)]
    pub media_dir: Option<PathBuf>,
}

/// `igdm media`.
#[derive(Debug, clap::Subcommand)]
pub enum MediaCommand {
    /// Print the local path of a message's media, downloading it first when
    /// it is not kept yet.
    Get {
        /// The message id.
        message_id: String,
    },
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
    let media = if args.media { Some(ctx.media_store()?) } else { None };
    let mut on_progress = |p| match p {
        SyncProgress::Conversations(n) => bar.set_length(n),
        SyncProgress::Conversation { index, total, .. } => {
            bar.set_length(total);
            bar.set_position(index.saturating_sub(1));
        }
        SyncProgress::Messages(n) => {
            messages = n;
            bar.set_message(format!("{messages} messages"));
        }
    };
    let result = match &media {
        Some(m) => sync_with_media(opened.client(), &*store, m, &opts, &mut on_progress).await,
        None => sync(opened.client(), &*store, &opts, &mut on_progress).await,
    };
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
                if let Some(m) = &report.media {
                    println!(
                        "media: {} kept ({} new files, {} bytes written of {} downloaded), {} kept before, \
                         {} links refreshed, {} over the size limit, {} over the budget, {} failed",
                        m.kept,
                        m.files_written,
                        m.bytes_written,
                        m.bytes_seen,
                        m.already,
                        m.refreshed,
                        m.too_large,
                        m.over_budget,
                        m.failed
                    );
                    for w in &m.warnings {
                        eprintln!("warning: {w}");
                    }
                }
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
    let base = args.output.as_ref().map(|o| o.parent().unwrap_or(Path::new("")).to_path_buf());
    let media_out = args.media_dir.clone().or_else(|| base.as_ref().map(|b| b.join("media")));
    let mut copier = match &media_out {
        Some(dir) => Some(MediaCopier::new(ctx.media_store()?, dir, base.as_deref())?),
        None => None,
    };
    let sink: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(sink);
    if args.format == "csv" {
        writeln!(
            out,
            "conversation_id,message_id,timestamp,sender_id,is_self,content_type,text,media"
        )?;
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
            let mut kept: HashMap<String, Vec<MediaRef>> = HashMap::new();
            for r in store.conversation_media(&account.name, c.id.as_str()).await? {
                kept.entry(r.message_id.clone()).or_default().push(r);
            }
            let mut cursor: Option<String> = None;
            loop {
                let page = store
                    .list_messages(&account.name, c.id.as_str(), 500, cursor.as_deref())
                    .await?;
                for m in &page.items {
                    let refs = kept.get(m.id.as_str()).map_or(&[][..], Vec::as_slice);
                    let media = match copier.as_mut() {
                        Some(cp) => cp.links(refs)?,
                        None => refs.iter().map(|r| media_json(r, None)).collect(),
                    };
                    if args.format == "csv" {
                        let paths: Vec<&str> =
                            media.iter().filter_map(|v| v["path"].as_str()).collect();
                        writeln!(
                            out,
                            "{},{},{},{},{},{},{},{}",
                            csv(c.id.as_str()),
                            csv(m.id.as_str()),
                            m.timestamp,
                            csv(m.sender.id.as_str()),
                            m.sender.is_self,
                            csv(m.content_type.as_str()),
                            csv(m.text.as_deref().unwrap_or("")),
                            csv(&paths.join(" "))
                        )?;
                    } else {
                        let mut v = json!(m);
                        if !media.is_empty() {
                            v["media"] = serde_json::Value::Array(media);
                        }
                        writeln!(out, "{v}")?;
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
    if let Some(cp) = copier
        && global.json
        && args.output.is_some()
    {
        println!("{}", json!({"media_files": cp.files, "media_dir": cp.dir}));
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies kept media into an export's media directory, once per file.
struct MediaCopier {
    media: igdm::MediaStore,
    /// Where the files go.
    dir: PathBuf,
    /// How exported messages name that directory.
    link_prefix: PathBuf,
    /// Hash → exported file name.
    copied: HashMap<String, String>,
    files: u64,
}

impl MediaCopier {
    fn new(media: igdm::MediaStore, dir: &Path, base: Option<&Path>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        // Relative to the export file when the directory is inside its folder.
        let link_prefix = match base {
            Some(b) => dir.strip_prefix(b).map_or_else(|_| dir.to_path_buf(), Path::to_path_buf),
            None => dir.to_path_buf(),
        };
        Ok(Self { media, dir: dir.to_path_buf(), link_prefix, copied: HashMap::new(), files: 0 })
    }

    /// The media entries of a message's kept attachments, copying their files.
    fn links(&mut self, refs: &[MediaRef]) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let name = match self.copied.get(&r.sha256) {
                Some(n) => n.clone(),
                None => {
                    let src = self.media.path_of(&r.sha256)?;
                    if !src.exists() {
                        // Kept once, removed since: listed without a file.
                        out.push(media_json(r, None));
                        continue;
                    }
                    let name =
                        format!("{}.{}", r.sha256, igdm::keep::extension_for(r.mime.as_deref()));
                    let dst = self.dir.join(&name);
                    if !dst.exists() {
                        std::fs::copy(&src, &dst).map_err(|e| {
                            anyhow::anyhow!("{} → {}: {e}", src.display(), dst.display())
                        })?;
                        self.files += 1;
                    }
                    self.copied.insert(r.sha256.clone(), name.clone());
                    name
                }
            };
            let path = self.link_prefix.join(name);
            out.push(media_json(r, Some(&path.to_string_lossy())));
        }
        Ok(out)
    }
}

/// One kept attachment as an exported message lists it.
fn media_json(r: &MediaRef, path: Option<&str>) -> serde_json::Value {
    let mut v = json!({
        "position": r.position,
        "sha256": r.sha256,
        "size": r.size,
        "mime": r.mime,
    });
    if let Some(p) = path {
        v["path"] = json!(p);
    }
    v
}

/// Runs `igdm media`.
pub async fn media(c: MediaCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let MediaCommand::Get { message_id } = c;
    let ctx = Runtime::from_env()?;
    let store = ctx.store().await?;
    let media = ctx.media_store()?;
    let opened = ctx.open(global.account.as_deref()).await?;
    let result = igdm::keep::media_of(opened.client(), &*store, &media, &message_id).await;
    opened.finish().await?;
    match result {
        Ok(files) => {
            if global.json {
                let items: Vec<serde_json::Value> =
                    files.iter().map(|(r, p)| media_json(r, Some(&p.to_string_lossy()))).collect();
                println!("{}", json!({"message_id": message_id, "media": items}));
            } else if files.is_empty() {
                eprintln!("message {message_id} has no media to keep");
                return Ok(ExitCode::from(1));
            } else {
                for (_, p) in &files {
                    println!("{}", p.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(output::client_error(global.json, &e)),
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

//! The action table (`igdm::catalog`) against what the front ends offer:
//! every action a built-in connector declares has an entry, every command,
//! option and tool an entry names exists, and `docs/actions.md` is the
//! table as generated.

use clap::CommandFactory as _;
use igdm::catalog::{ACTIONS, Reach, entry};

/// Each built-in connector's id and action names.
fn declared() -> Vec<(&'static str, Vec<String>)> {
    igdm_connectors::all()
        .iter()
        .map(|(id, _)| {
            let c = igdm_runtime::connector(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            (*id, c.actions().map(|a| a.name().to_owned()).collect())
        })
        .collect()
}

/// Whether `igdm WORDS… [--OPTION]` exists: each word a subcommand of the
/// one before, the option one of the last one's.
fn command_exists(path: &str) -> Result<(), String> {
    let mut cmd = crate::Cli::command();
    for word in path.split_whitespace() {
        if let Some(long) = word.strip_prefix("--") {
            return if cmd.get_arguments().any(|a| a.get_long() == Some(long)) {
                Ok(())
            } else {
                Err(format!("`igdm {path}`: `{}` has no option --{long}", cmd.get_name()))
            };
        }
        cmd = cmd
            .find_subcommand(word)
            .cloned()
            .ok_or_else(|| format!("`igdm {path}`: no subcommand `{word}`"))?;
    }
    Ok(())
}

#[test]
fn every_declared_action_has_a_cli_and_an_mcp_entry() {
    let mut missing = Vec::new();
    for (id, actions) in declared() {
        for a in actions {
            if entry(&a).is_none() {
                missing.push(format!("{id} declares {a}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "actions without an entry in crates/igdm/src/catalog.rs (add how the CLI and MCP reach them): {missing:#?}"
    );
}

#[test]
fn every_entry_is_declared_and_names_what_exists() {
    let all = declared();
    let mut wrong = Vec::new();
    for e in ACTIONS {
        if !all.iter().any(|(_, actions)| actions.iter().any(|a| a == e.action)) {
            wrong.push(format!("{}: no built-in connector declares it", e.action));
        }
        match e.cli {
            Reach::Not(why) => assert!(!why.is_empty()),
            _ => {
                if let Err(m) = command_exists(e.cli.target().unwrap_or_default()) {
                    wrong.push(format!("{}: {m}", e.action));
                }
            }
        }
        if let Some(tool) = e.mcp.target()
            && igdm_mcp::tools::spec(tool).is_none()
        {
            wrong.push(format!("{}: the MCP server has no tool `{tool}`", e.action));
        }
        // A tool of its own runs this very action.
        if let Reach::Direct(tool) = e.mcp
            && let Some(spec) = igdm_mcp::tools::spec(tool)
            && let Some(action) = spec.action
            && action != e.action
            && tool == e.action
        {
            wrong.push(format!("{}: tool `{tool}` runs `{action}`", e.action));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The check itself refuses what does not exist.
    assert!(command_exists("send --like-nothing").is_err());
    assert!(command_exists("no-such-command").is_err());
    assert!(command_exists("requests approve").is_ok());
}

#[test]
fn docs_actions_md_is_the_generated_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/actions.md");
    let want = igdm::catalog::markdown(&declared());
    if std::env::var_os("IGDM_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/actions.md is stale: run `IGDM_BLESS=1 cargo test -p igdm-cli catalog` and commit it"
    );
}

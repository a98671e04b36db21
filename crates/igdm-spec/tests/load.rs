//! Loading connector files: seed 001 verbatim, and positioned load errors.

use igdm_spec::{AuthType, Connector};

const SEED: &str = include_str!("fixtures/seed001.md");

#[test]
fn seed_001_loads_verbatim() {
    let c = Connector::load(SEED, "seed001.md").unwrap();
    assert_eq!(c.id, "instagram");
    assert_eq!(c.auth.kind, AuthType::Cookies);
    assert_eq!(c.auth.cookies, ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did"]);
    assert_eq!(c.actions().count(), 18);
    assert!(c.readme.starts_with("\n# Instagram"));
    assert_eq!(c.extra["icon"], "icon.png");
    assert_eq!(c.extra["color"], "#E4405F");
    assert_eq!(c.extra["website"], "https://www.instagram.com");
    assert_eq!(c.extra["platform"], "all");
    assert!(c.instructions.as_deref().unwrap().contains("â¤ï¸"));
    let connect = c.auth.connect.as_ref().unwrap();
    assert_eq!(connect["playwright"]["launch"]["headless"], false);
    assert_eq!(
        c.session.keep_alive.as_ref().unwrap().interval,
        Some(std::time::Duration::from_secs(4 * 3600))
    );
    let lc = c.action("list_conversations").unwrap();
    assert!(lc.readonly());
    assert_eq!(lc.params()["limit"].max, Some(50.0));
    assert!(!c.action("send").unwrap().readonly());
    let origins: Vec<&str> = c.origins().collect();
    assert_eq!(origins, ["https://i.instagram.com:443"]);
}

fn load_err(text: &str) -> igdm_spec::SpecError {
    Connector::load(text, "bad.md").unwrap_err()
}

#[test]
fn misspelled_filter_points_at_file_line_and_column() {
    let bad = SEED.replacen(
        "updated_at: \"[].last_activity_at | divide: 1000000",
        "updated_at: \"[].last_activity_at | divde: 1000000",
        1,
    );
    assert_ne!(bad, SEED);
    let e = load_err(&bad);
    // Line of the first `updated_at` mapping in the file, column of `divde`.
    let (line_no, line) = bad.lines().enumerate().find(|(_, l)| l.contains("divde")).unwrap();
    assert_eq!(e.line, line_no as u64 + 1);
    assert_eq!(e.column, line.find("divde").unwrap() as u64 + 1);
    assert!(e.message.contains("unknown filter `divde`"), "{e}");
    assert!(e.to_string().starts_with(&format!("bad.md:{}:{}: ", e.line, e.column)), "{e}");
}

#[test]
fn unknown_variable_is_a_load_error() {
    let bad =
        SEED.replacen("X-MID: \"{{auth.cookies.mid}}\"", "X-MID: \"{{session.cookies.mid}}\"", 1);
    let e = load_err(&bad);
    let (line_no, line) =
        bad.lines().enumerate().find(|(_, l)| l.contains("{{session.cookies")).unwrap();
    assert_eq!((e.line, e.column), (line_no as u64 + 1, line.find("session.").unwrap() as u64 + 1));
    assert!(e.message.contains("unknown variable `session`"), "{e}");

    let bad = SEED.replacen(
        "is_self: \"[].user_id == {{context.viewer_id}}\"",
        "is_self: \"[].user_id == {{contxt.viewer_id}}\"",
        1,
    );
    assert!(load_err(&bad).message.contains("unknown variable `contxt`"));
    let bad = SEED.replacen("content: \"[].text\"", "content: \"text\"", 1);
    assert!(load_err(&bad).message.contains("unknown variable `text`"));
}

#[test]
fn strict_booleans_and_typos_in_keys() {
    let bad = SEED.replacen("readonly: true", "readonly: yes", 1);
    let e = load_err(&bad);
    assert!(e.message.contains("boolean"), "{e}");
    let (line_no, _) = bad.lines().enumerate().find(|(_, l)| l.contains("readonly: yes")).unwrap();
    assert_eq!(e.line, line_no as u64 + 1);
    let bad = SEED.replacen(
        "      method: GET\n      url: \"{{api.base_url}}/direct_v2/inbox/\"",
        "      methd: GET\n      url: \"{{api.base_url}}/direct_v2/inbox/\"",
        1,
    );
    let e = load_err(&bad);
    assert!(e.message.contains("methd"), "{e}");
    assert!(e.line > 0);
}

#[test]
fn seed_file_in_shared_is_identical_to_fixture() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/seeds/001_52560c432355ac8d.txt");
    let Ok(bytes) = std::fs::read(&shared) else {
        igdm_test::prereq::missing(
            "seed_file_in_shared_is_identical_to_fixture",
            "the reference copy of seed 001",
            &format!("expected at {} (shared/ beside the checkout)", shared.display()),
        );
        return;
    };
    assert_eq!(
        bytes,
        SEED.as_bytes(),
        "tests/fixtures/seed001.md differs from {}",
        shared.display()
    );
}

#[test]
fn a_default_that_breaks_its_declaration_is_a_load_error() {
    let bad = SEED.replacen(
        "        default: 20\n        max: 50",
        "        default: 80\n        max: 50",
        1,
    );
    assert_ne!(bad, SEED);
    let e = load_err(&bad);
    assert!(e.message.contains("param `limit`: the default breaks the declaration"), "{e}");
    let (line_no, _) = bad.lines().enumerate().find(|(_, l)| l.contains("default: 80")).unwrap();
    // Reported at the param's `type:` line, just above.
    assert_eq!(e.line, line_no as u64);
}

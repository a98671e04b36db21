//! Executes [`Step`]s in a real Chromium over the DevTools protocol
//! (chromiumoxide, system browser, never downloaded).
//!
//! Each run uses a fresh temporary profile (`--user-data-dir`), removed at
//! the end, so cookies of one login never leak into another. The CDP handler
//! stream is drained on its own task for the whole run; items that fail to
//! deserialize (newer Chromium events than the bundled protocol) are ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::network::Cookie;
use chromiumoxide::{Browser, BrowserConfig, Element, Page};
use futures::StreamExt;
use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokio::time::{Instant, sleep, timeout};
use tracing::instrument::WithSubscriber as _;

use super::{Condition, Step, StepError, StepErrorKind, UrlRewriter, substitute};

/// How to run the browser.
#[derive(Clone)]
pub struct BrowserOptions {
    /// The Chromium binary; found on `PATH` (or `IGDM_CHROMIUM`) when `None`.
    pub executable: Option<PathBuf>,
    /// Run without a window.
    pub headless: bool,
    /// Rewrites spec URLs to a sandbox.
    pub rewriter: Option<UrlRewriter>,
    /// How long to wait for an element before `click`, `type` or `extract` give up.
    pub element_timeout: Duration,
    /// Values for `{{name}}` placeholders in `type` text and `goto` URLs.
    pub inputs: BTreeMap<String, SecretString>,
    /// Printed (as a warning log) when a headed run meets a challenge page;
    /// the run keeps waiting for the user to complete it.
    pub challenge_notice: Option<String>,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self {
            executable: None,
            headless: true,
            rewriter: None,
            element_timeout: Duration::from_secs(10),
            inputs: BTreeMap::new(),
            challenge_notice: None,
        }
    }
}

impl fmt::Debug for BrowserOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserOptions")
            .field("executable", &self.executable)
            .field("headless", &self.headless)
            .field("rewriter", &self.rewriter)
            .field("element_timeout", &self.element_timeout)
            .field("inputs", &self.inputs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What a successful run collected.
#[derive(Clone, Default)]
pub struct RunOutcome {
    /// Cookies from `extract_cookies` (every cookie when the steps have none).
    pub cookies: BTreeMap<String, SecretString>,
    /// Values from `extract` steps.
    pub extracted: BTreeMap<String, String>,
    /// The page URL when the run ended.
    pub final_url: Option<String>,
}

impl fmt::Debug for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOutcome")
            .field("cookies", &self.cookies.keys().collect::<Vec<_>>())
            .field("extracted", &self.extracted)
            .field("final_url", &self.final_url)
            .finish()
    }
}

impl RunOutcome {
    /// The runner protocol's success document:
    /// `{"success": true, "cookies": {…}, "extracted": {…}}`. Contains the cookie values.
    #[must_use]
    pub fn to_protocol_json(&self) -> Value {
        let cookies: Map<String, Value> = self
            .cookies
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.expose_secret().to_owned())))
            .collect();
        let extracted: Map<String, Value> =
            self.extracted.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        serde_json::json!({"success": true, "cookies": cookies, "extracted": extracted})
    }
}

/// The Chromium to use: `IGDM_CHROMIUM`, else `chromium`, `chromium-browser`,
/// `google-chrome` or `google-chrome-stable` on `PATH`.
#[must_use]
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IGDM_CHROMIUM").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Whether a graphical display is available (`DISPLAY` or `WAYLAND_DISPLAY`).
#[must_use]
pub fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn browser_err(step: Option<usize>, what: &str, e: impl fmt::Display) -> StepError {
    StepError::new(StepErrorKind::Browser, step, format!("{what}: {e}"))
}

/// How long a headless run tolerates a challenge page before giving up.
const CHALLENGE_GRACE: Duration = Duration::from_secs(5);

/// Whether a URL is one of Instagram's verification pages.
fn is_challenge_url(url: &str) -> bool {
    ["/challenge/", "/checkpoint/", "/accounts/suspended/"].iter().any(|m| url.contains(m))
}

/// A temporary, private profile directory removed on drop.
struct Profile(PathBuf);

impl Profile {
    fn create() -> Result<Self, StepError> {
        let dir =
            std::env::temp_dir().join(format!("igdm-chromium-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| browser_err(None, "create profile directory", e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| browser_err(None, "restrict profile directory", e))?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `steps` in a fresh Chromium and returns what they collected.
///
/// # Errors
/// A [`StepError`] whose kind maps to the spec's `on_error` codes
/// (`timeout`, `challenge_required`, …).
pub async fn run_steps(steps: &[Step], opts: &BrowserOptions) -> Result<RunOutcome, StepError> {
    let exe = match &opts.executable {
        Some(p) => p.clone(),
        None => find_chromium().ok_or_else(|| {
            StepError::new(
                StepErrorKind::Browser,
                None,
                "no Chromium found: install `chromium` or set IGDM_CHROMIUM",
            )
        })?,
    };
    let profile = Profile::create()?;
    let mut builder = BrowserConfig::builder()
        .chrome_executable(&exe)
        .user_data_dir(profile.path())
        .launch_timeout(Duration::from_secs(30))
        .request_timeout(Duration::from_secs(30))
        .args([
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]);
    if running_as_root() {
        builder = builder.no_sandbox();
    }
    if !opts.headless {
        builder = builder.with_head();
    }
    let config = builder.build().map_err(|e| browser_err(None, "configure Chromium", e))?;
    tracing::debug!(executable = %exe.display(), headless = opts.headless, "launching Chromium");
    let (mut browser, mut handler) =
        Browser::launch(config).await.map_err(|e| browser_err(None, "launch Chromium", e))?;
    // chromiumoxide logs every CDP message at trace level, typed text and
    // cookie values included, from the task that polls the handler: that task
    // runs with logging disabled. Its errors (events newer than the bundled
    // protocol) are ignored.
    let drain = tokio::spawn(
        async move {
            while let Some(item) = handler.next().await {
                let _ = item;
            }
        }
        .with_subscriber(tracing::subscriber::NoSubscriber::default()),
    );
    let result =
        Session { browser: &browser, opts, page: None, challenge_noted: false }.run(steps).await;
    if let Err(e) = browser.close().await {
        tracing::debug!(error = %e, "closing Chromium");
    }
    if timeout(Duration::from_secs(5), browser.wait()).await.is_err() {
        let _ = browser.kill().await;
    }
    drain.abort();
    drop(profile);
    result
}

struct Session<'a> {
    browser: &'a Browser,
    opts: &'a BrowserOptions,
    page: Option<Page>,
    challenge_noted: bool,
}

impl Session<'_> {
    async fn run(mut self, steps: &[Step]) -> Result<RunOutcome, StepError> {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .map_err(|e| browser_err(None, "open a tab", e))?;
        self.page = Some(page);
        let mut out = RunOutcome::default();
        let mut extracted_cookies = false;
        for (i, step) in steps.iter().enumerate() {
            tracing::debug!(step = i, name = step.name(), "browser step");
            match step {
                Step::Goto { url } => self.goto(i, url).await?,
                Step::WaitFor { any, timeout } => self.wait_for(i, any, *timeout).await?,
                Step::AssertCookies(names) => {
                    let jar = self.cookies(i).await?;
                    let missing: Vec<&str> = names
                        .iter()
                        .map(String::as_str)
                        .filter(|n| !jar.iter().any(|c| c.name == *n && !c.value.is_empty()))
                        .collect();
                    if !missing.is_empty() {
                        return Err(StepError::new(
                            StepErrorKind::MissingCookies,
                            Some(i),
                            format!("missing required cookies: {}", missing.join(", ")),
                        ));
                    }
                }
                Step::ExtractCookies { names, optional } => {
                    extracted_cookies = true;
                    let jar = self.cookies(i).await?;
                    let mut missing = Vec::new();
                    for (name, required) in
                        names.iter().map(|n| (n, true)).chain(optional.iter().map(|n| (n, false)))
                    {
                        match jar.iter().find(|c| &c.name == name) {
                            Some(c) => {
                                out.cookies
                                    .insert(name.clone(), SecretString::from(c.value.clone()));
                            }
                            None if required => missing.push(name.as_str()),
                            None => {}
                        }
                    }
                    if !missing.is_empty() {
                        return Err(StepError::new(
                            StepErrorKind::MissingCookies,
                            Some(i),
                            format!("missing required cookies: {}", missing.join(", ")),
                        ));
                    }
                }
                Step::Extract { selector, attribute, as_name } => {
                    match self.extract(i, selector, attribute.as_deref()).await {
                        Ok(Some(v)) => {
                            out.extracted.insert(as_name.clone(), v);
                        }
                        Ok(None) => tracing::warn!(
                            step = i,
                            selector,
                            "extract: the element has no such value"
                        ),
                        Err(e) => {
                            tracing::warn!(step = i, selector, error = %e, "extract: element not found; continuing")
                        }
                    }
                }
                Step::Click { selector } => {
                    let el = self.element(i, selector).await?;
                    el.click()
                        .await
                        .map_err(|e| browser_err(Some(i), &format!("click {selector}"), e))?;
                }
                Step::Type { selector, text } => {
                    let el = self.element(i, selector).await?;
                    let text = substitute(text, |k| {
                        self.opts.inputs.get(k).map(|v| v.expose_secret().to_owned())
                    });
                    el.call_js_fn("function() { this.focus(); this.value = ''; }", false)
                        .await
                        .map_err(|e| browser_err(Some(i), &format!("focus {selector}"), e))?;
                    el.type_str(&text)
                        .await
                        .map_err(|e| browser_err(Some(i), &format!("type into {selector}"), e))?;
                    self.ensure_value(i, selector, &el, &text).await?;
                }
                Step::Close => break,
            }
        }
        if !extracted_cookies {
            for c in self.cookies(steps.len()).await? {
                out.cookies.insert(c.name.clone(), SecretString::from(c.value.clone()));
            }
        }
        out.final_url = self.current_url().await;
        Ok(out)
    }

    fn page(&self) -> Result<&Page, StepError> {
        self.page.as_ref().ok_or_else(|| StepError::new(StepErrorKind::Browser, None, "no page"))
    }

    async fn goto(&self, i: usize, url: &str) -> Result<(), StepError> {
        let url =
            substitute(url, |k| self.opts.inputs.get(k).map(|v| v.expose_secret().to_owned()));
        let url = self.opts.rewriter.as_ref().map_or(url.clone(), |r| r.url(&url));
        tracing::debug!(step = i, url = %url, "goto");
        self.page()?.goto(url.as_str()).await.map_err(|e| {
            StepError::new(StepErrorKind::Navigation, Some(i), format!("cannot open {url}: {e}"))
        })?;
        Ok(())
    }

    /// Checks that typing left `text` in the field. A headed window that
    /// has not taken the keyboard focus yet can lose key events; the value
    /// is then set as a page script would, through the input's own setter
    /// and an `input` event, so that script-driven forms see it too.
    async fn ensure_value(
        &self,
        i: usize,
        selector: &str,
        el: &Element,
        text: &str,
    ) -> Result<(), StepError> {
        let literal = serde_json::Value::String(text.to_owned()).to_string();
        let holds = |ret: chromiumoxide::cdp::js_protocol::runtime::CallFunctionOnReturns| {
            ret.result.value.and_then(|v| v.as_bool()).unwrap_or(false)
        };
        let check = format!("function() {{ return this.value === {literal}; }}");
        let typed = el
            .call_js_fn(check.as_str(), false)
            .await
            .map_err(|e| browser_err(Some(i), &format!("read {selector}"), e))?;
        if holds(typed) {
            return Ok(());
        }
        tracing::debug!(
            step = i,
            selector,
            "typed keys did not reach the field; setting its value"
        );
        let set = format!(
            "function() {{ \
               const proto = Object.getPrototypeOf(this); \
               const desc = Object.getOwnPropertyDescriptor(proto, 'value'); \
               if (desc && desc.set) {{ desc.set.call(this, {literal}); }} else {{ this.value = {literal}; }} \
               this.dispatchEvent(new Event('input', {{ bubbles: true }})); \
               this.dispatchEvent(new Event('change', {{ bubbles: true }})); \
               return this.value === {literal}; }}"
        );
        let set = el
            .call_js_fn(set.as_str(), false)
            .await
            .map_err(|e| browser_err(Some(i), &format!("fill {selector}"), e))?;
        if holds(set) {
            Ok(())
        } else {
            Err(StepError::new(
                StepErrorKind::Browser,
                Some(i),
                format!("the text typed into {selector} did not stay in the field"),
            ))
        }
    }

    async fn current_url(&self) -> Option<String> {
        let page = self.page.as_ref()?;
        match timeout(Duration::from_secs(3), page.evaluate("window.location.href")).await {
            Ok(Ok(v)) => v.into_value::<String>().ok(),
            _ => timeout(Duration::from_secs(3), page.url())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten(),
        }
    }

    async fn cookies(&self, i: usize) -> Result<Vec<Cookie>, StepError> {
        self.browser.get_cookies().await.map_err(|e| browser_err(Some(i), "read cookies", e))
    }

    async fn find(&self, selector: &str) -> Option<Element> {
        let page = self.page.as_ref()?;
        timeout(Duration::from_secs(3), page.find_element(selector)).await.ok().and_then(Result::ok)
    }

    async fn element(&self, i: usize, selector: &str) -> Result<Element, StepError> {
        let deadline = Instant::now() + self.opts.element_timeout;
        loop {
            if let Some(el) = self.find(selector).await {
                return Ok(el);
            }
            if Instant::now() >= deadline {
                return Err(StepError::new(
                    StepErrorKind::SelectorNotFound,
                    Some(i),
                    format!(
                        "no element matches `{selector}` after {} ms",
                        self.opts.element_timeout.as_millis()
                    ),
                ));
            }
            sleep(Duration::from_millis(200)).await;
        }
    }

    async fn extract(
        &self,
        i: usize,
        selector: &str,
        attribute: Option<&str>,
    ) -> Result<Option<String>, StepError> {
        let el = self.element(i, selector).await?;
        match attribute {
            Some(a) => el.attribute(a).await.map_err(|e| browser_err(Some(i), "read attribute", e)),
            None => el.inner_text().await.map_err(|e| browser_err(Some(i), "read text", e)),
        }
    }

    async fn wait_for(
        &mut self,
        i: usize,
        any: &[Condition],
        limit: Duration,
    ) -> Result<(), StepError> {
        let patterns: Vec<(Regex, String)> = any
            .iter()
            .filter_map(|c| match c {
                Condition::UrlMatches(p) => {
                    let p = self.opts.rewriter.as_ref().map_or(p.clone(), |r| r.pattern(p));
                    Regex::new(&p).ok().map(|re| (re, p))
                }
                _ => None,
            })
            .collect();
        let deadline = Instant::now() + limit;
        let mut challenge_since: Option<Instant> = None;
        let mut seen = None;
        loop {
            let url = self.current_url().await.unwrap_or_default();
            if seen.as_ref() != Some(&url) {
                tracing::debug!(step = i, url = %redact_query(&url), "wait_for: page at");
                seen = Some(url.clone());
            }
            if let Some((_, p)) = patterns.iter().find(|(re, _)| re.is_match(&url)) {
                tracing::debug!(step = i, pattern = %p, "wait_for: url matched");
                return Ok(());
            }
            for c in any {
                match c {
                    Condition::Selector(s) if self.find(s).await.is_some() => {
                        tracing::debug!(step = i, selector = %s, "wait_for: selector present");
                        return Ok(());
                    }
                    Condition::Cookie(name) => {
                        let jar = self.cookies(i).await?;
                        if jar.iter().any(|c| &c.name == name) {
                            return Ok(());
                        }
                    }
                    _ => {}
                }
            }
            if is_challenge_url(&url) {
                // A challenge page that stays put (not one being submitted) cannot be
                // completed without a person.
                let since = *challenge_since.get_or_insert_with(Instant::now);
                if self.opts.headless && since.elapsed() >= CHALLENGE_GRACE {
                    return Err(StepError::new(
                        StepErrorKind::ChallengeRequired,
                        Some(i),
                        "Instagram asks for a verification that a headless browser cannot complete; run the login with a display",
                    ));
                }
                if !self.opts.headless && !self.challenge_noted {
                    self.challenge_noted = true;
                    let notice = self.opts.challenge_notice.as_deref().unwrap_or(
                        "Instagram requires verification: complete it in the browser window",
                    );
                    tracing::warn!("{notice}");
                }
            }
            if !is_challenge_url(&url) {
                challenge_since = None;
            }
            if Instant::now() >= deadline {
                return Err(StepError::new(
                    StepErrorKind::Timeout,
                    Some(i),
                    format!("none of the conditions held within {} ms", limit.as_millis()),
                ));
            }
            sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A browser login that produced a cookie credential.
pub struct BrowserLogin {
    /// The credential to store (label = the extracted `username`).
    pub credential: crate::credential::CookieCredential,
    /// The connector's success message with placeholders filled.
    pub message: Option<String>,
    /// Everything `extract` steps collected.
    pub extracted: BTreeMap<String, String>,
}

impl fmt::Debug for BrowserLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserLogin")
            .field("credential", &self.credential)
            .field("message", &self.message)
            .field("extracted", &self.extracted)
            .finish()
    }
}

/// Runs a connector's browser login and builds the cookie credential,
/// checking the connector's required cookies.
///
/// # Errors
/// [`AuthError::Spec`](crate::AuthError::Spec) when the connector has no
/// browser steps; [`AuthError::LoginFailed`](crate::AuthError::LoginFailed)
/// carrying the connector's `on_error` message; [`AuthError::MissingCookies`](crate::AuthError::MissingCookies).
pub async fn browser_login(
    cfg: &crate::connector::AuthConfig,
    opts: &BrowserOptions,
) -> Result<BrowserLogin, crate::AuthError> {
    let spec = cfg.connect.as_ref().ok_or_else(|| {
        crate::AuthError::Spec("the connector has no auth.connect browser steps".into())
    })?;
    let mut opts = opts.clone();
    if opts.challenge_notice.is_none() {
        opts.challenge_notice = spec.on_error.get("challenge_required").cloned();
    }
    let outcome = run_steps(&spec.steps, &opts).await.map_err(|error| {
        crate::AuthError::LoginFailed { message: spec.error_message(&error), error }
    })?;
    let label = outcome.extracted.get("username").cloned();
    let mut credential = crate::credential::CookieCredential::new(
        outcome.cookies.clone(),
        cfg.domain.clone(),
        label,
    );
    credential.base_url = opts.rewriter.as_ref().map(|r| r.to_base().to_owned());
    let missing = credential.missing(cfg.cookies.iter().map(String::as_str));
    if !missing.is_empty() {
        return Err(crate::AuthError::MissingCookies(missing));
    }
    Ok(BrowserLogin {
        message: spec.success_message(&outcome.extracted),
        extracted: outcome.extracted,
        credential,
    })
}

/// Decides headless mode: forced by `force_headless`, else the spec's
/// `launch.headless`, and always headless without a display.
#[must_use]
pub fn decide_headless(force_headless: bool, spec_headless: Option<bool>) -> bool {
    force_headless || spec_headless == Some(true) || !has_display()
}

/// The `igdm browser-run` protocol: `input` is `{"steps": […], "launch":
/// {"headless": …}}` (plus optional `"inputs": {"name": "value"}` for `{{name}}`
/// placeholders); the result is `{"success": true, "cookies": {…}, "extracted": {…}}`
/// or `{"success": false, "error": MESSAGE, "code": CODE}`.
pub async fn run_protocol(input: &str, mut opts: BrowserOptions, force_headless: bool) -> Value {
    let fail = |code: &str, message: String| serde_json::json!({"success": false, "error": message, "code": code});
    let doc: Value = match serde_json::from_str(input) {
        Ok(v) => v,
        Err(e) => return fail("invalid_input", format!("stdin is not JSON: {e}")),
    };
    let spec = match super::ConnectSpec::from_playwright(&doc) {
        Ok(s) => s,
        Err(e) => return fail("invalid_input", e.to_string()),
    };
    if let Some(Value::Object(m)) = doc.get("inputs") {
        for (k, v) in m {
            if let Some(s) = v.as_str() {
                opts.inputs.insert(k.clone(), SecretString::from(s.to_owned()));
            }
        }
    }
    opts.headless = decide_headless(force_headless, spec.headless);
    match run_steps(&spec.steps, &opts).await {
        Ok(out) => out.to_protocol_json(),
        Err(e) => fail(e.kind.code(), spec.error_message(&e)),
    }
}

/// `url` without its query and fragment, which can carry codes and tokens:
/// what a debug log may show of a page.
fn redact_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or_default()
}

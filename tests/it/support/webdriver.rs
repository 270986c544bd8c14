//! A small W3C WebDriver client for the browser tests: it starts Debian's `chromedriver` as a
//! child, opens one headless Chromium session, and offers what the UI tests need (navigate, find
//! by CSS, click, type, read text and attributes, run scripts, wait with a deadline, read the
//! browser console, save screenshots). It speaks plain HTTP with `reqwest`, so no WebDriver crate
//! is needed.
//!
//! Browser tests are heavy on a two-core machine: [`Browser::start`] holds a process-wide lock
//! until the browser is dropped, so they run one at a time even when the harness runs tests in
//! parallel.
//!
//! Chromium and ChromeDriver are not optional: when either is missing the test fails (it never
//! skips) with a message that says how to install them.

use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Chromium binary; overridden by `SWITCHBOARD_TEST_CHROMIUM`.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// ChromeDriver binary; overridden by `SWITCHBOARD_TEST_CHROMEDRIVER`.
pub const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long [`Browser::wait_until`] and friends wait unless told otherwise.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The W3C key of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// What to tell a person whose machine lacks the browser.
const INSTALL_HINT: &str = "install Debian's chromium and chromium-driver (tests/run.sh does)";

/// Serializes the browser tests (see the module docs).
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One headless Chromium session driven through a ChromeDriver child process. Dropping it ends
/// the session and kills the driver's process group.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session_url: String,
    driver_port: u16,
    session_id: String,
    driver: std::process::Child,
    test: String,
    /// Console entries read so far (the driver hands each entry out once).
    console: Mutex<Vec<ConsoleEntry>>,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// One entry of the browser console as ChromeDriver reports it.
#[derive(Debug, Clone)]
pub struct ConsoleEntry {
    /// `SEVERE`, `WARNING`, `INFO`, `DEBUG`.
    pub level: String,
    /// `javascript`, `console-api`, `network`, `security`, …
    pub source: String,
    pub message: String,
}

/// An element of the current page. Valid until the page navigates or drops the node.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Start ChromeDriver and a headless Chromium session for the test `test` (the name is used
    /// for screenshot files). Waits for any other browser test of this process to finish first.
    ///
    /// # Panics
    /// When Chromium or ChromeDriver is missing or does not start.
    pub async fn start(test: &str) -> Browser {
        let serial = ONE_BROWSER_AT_A_TIME.lock().await;
        let chromium = binary("SWITCHBOARD_TEST_CHROMIUM", DEFAULT_CHROMIUM);
        let chromedriver = binary("SWITCHBOARD_TEST_CHROMEDRIVER", DEFAULT_CHROMEDRIVER);
        let driver_port = super::free_port();
        let mut driver = std::process::Command::new(&chromedriver)
            .arg(format!("--port={driver_port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot run {}: {err}; {INSTALL_HINT}",
                    chromedriver.display()
                )
            });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("reqwest client");
        let base = format!("http://127.0.0.1:{driver_port}");
        let ready_by = Instant::now() + Duration::from_secs(20);
        loop {
            let status = http.get(format!("{base}/status")).send().await;
            if let Ok(status) = status
                && let Ok(body) = status.json::<Value>().await
                && body["value"]["ready"] == true
            {
                break;
            }
            if let Ok(Some(exit)) = driver.try_wait() {
                panic!(
                    "{} exited at start ({exit}); {INSTALL_HINT}",
                    chromedriver.display()
                );
            }
            assert!(
                Instant::now() < ready_by,
                "{} did not become ready on port {driver_port} within 20 s",
                chromedriver.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium.display().to_string(),
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1400,1000",
                            "--no-first-run",
                            "--no-default-browser-check",
                        ],
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "timeouts": { "script": 30_000, "pageLoad": 30_000, "implicit": 0 },
                }
            }
        });
        let response = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new WebDriver session request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let Some(session_id) = body["value"]["sessionId"].as_str().map(str::to_owned) else {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(driver.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = driver.wait();
            panic!(
                "chromedriver could not start {} ({status}): {}; {INSTALL_HINT}",
                chromium.display(),
                body["value"]["message"].as_str().unwrap_or("no message")
            );
        };
        Browser {
            http,
            session_url: format!("{base}/session/{session_id}"),
            driver_port,
            session_id,
            driver,
            test: test.to_owned(),
            console: Mutex::new(Vec::new()),
            _serial: serial,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Navigation and pages

    /// Load `url` and wait for its `load` event.
    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Handles of every open window and tab.
    pub async fn window_handles(&self) -> Vec<String> {
        let handles = self
            .command(reqwest::Method::GET, "/window/handles", Value::Null)
            .await;
        handles
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    // -----------------------------------------------------------------------------------------
    // Elements

    /// The first element matching `css`; panics when there is none.
    pub async fn find(&self, css: &str) -> Element<'_> {
        match self.try_find(css).await {
            Some(element) => element,
            None => self.fail(&format!("no element matches `{css}`")).await,
        }
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        self.find_all(css).await.into_iter().next()
    }

    /// Every element matching `css`, in document order.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        self.elements(&found)
    }

    /// Wait (up to [`PATIENCE`]) until an element matches `css`, and return it.
    pub async fn wait_for(&self, css: &str) -> Element<'_> {
        let what = format!("an element matching `{css}`");
        let script = "return document.querySelector(arguments[0]);";
        let found = self
            .wait_until_with(&what, PATIENCE, script, json!([css]))
            .await;
        self.element(&found)
            .expect("the wait ends on an element reference")
    }

    /// Wait (up to [`PATIENCE`]) until the first element matching `css` has text, and return
    /// that text (`textContent`, trimmed). Read in the page in one step, so a re-render between
    /// finding and reading cannot leave a stale reference.
    pub async fn wait_text(&self, css: &str) -> String {
        let what = format!("text in `{css}`");
        let script = "const e = document.querySelector(arguments[0]); \
                      return e && e.textContent.trim();";
        let text = self
            .wait_until_with(&what, PATIENCE, script, json!([css]))
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// The element a script returned (`return document.querySelector(…)`), if it returned one.
    pub fn element(&self, value: &Value) -> Option<Element<'_>> {
        value[ELEMENT_KEY].as_str().map(|id| Element {
            browser: self,
            id: id.to_owned(),
        })
    }

    /// The elements of a script's or a find command's array result.
    pub fn elements(&self, value: &Value) -> Vec<Element<'_>> {
        value
            .as_array()
            .map(|items| items.iter().filter_map(|v| self.element(v)).collect())
            .unwrap_or_default()
    }

    // -----------------------------------------------------------------------------------------
    // Scripts and waiting

    /// Run `script` (a function body; `arguments[i]` are `args`) in the page and return what it
    /// returns. Elements in `args` are passed as [`Element::reference`].
    pub async fn script(&self, script: &str, args: Value) -> Value {
        let args = if args.is_null() { json!([]) } else { args };
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// Run an asynchronous `script`: its last argument is the callback to call with the result.
    pub async fn script_async(&self, script: &str, args: Value) -> Value {
        let args = if args.is_null() { json!([]) } else { args };
        self.command(
            reqwest::Method::POST,
            "/execute/async",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// Poll `script` every 50 ms until it returns something truthy (not `null`, `false`, `0`,
    /// `""` or `undefined`) and return that, or fail after [`PATIENCE`] saying `what` was awaited
    /// (with a screenshot and the console).
    pub async fn wait_until(&self, what: &str, script: &str) -> Value {
        self.wait_until_with(what, PATIENCE, script, json!([]))
            .await
    }

    /// [`Browser::wait_until`] with a deadline and script arguments.
    pub async fn wait_until_with(
        &self,
        what: &str,
        limit: Duration,
        script: &str,
        args: Value,
    ) -> Value {
        let deadline = Instant::now() + limit;
        let last = loop {
            let value = self.script(script, args.clone()).await;
            if truthy(&value) {
                return value;
            }
            if Instant::now() >= deadline {
                break value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.fail(&format!(
            "timed out after {limit:?} waiting for {what} (last value: {last})"
        ))
        .await
    }

    // -----------------------------------------------------------------------------------------
    // Console

    /// Every console entry since the session started.
    pub async fn console(&self) -> Vec<ConsoleEntry> {
        let fresh = self
            .command(
                reqwest::Method::POST,
                "/se/log",
                json!({ "type": "browser" }),
            )
            .await;
        let mut console = self.console.lock().expect("console lock");
        for entry in fresh.as_array().into_iter().flatten() {
            console.push(ConsoleEntry {
                level: entry["level"].as_str().unwrap_or_default().to_owned(),
                source: entry["source"].as_str().unwrap_or_default().to_owned(),
                message: entry["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        console.clone()
    }

    /// The console entries that fail a test: `SEVERE` entries (uncaught exceptions, unhandled
    /// rejections, `console.error`, CSP violations, assets that did not load), except a failed
    /// `/api/` request, which is the server's answer to input the page handles on its own.
    pub async fn console_errors(&self) -> Vec<ConsoleEntry> {
        self.console()
            .await
            .into_iter()
            .filter(|e| e.level == "SEVERE")
            .filter(|e| !(e.source == "network" && e.message.contains("/api/")))
            .collect()
    }

    /// Fail when the console has an error (see [`Browser::console_errors`]); `context` says
    /// what the page was doing.
    pub async fn assert_console_clean(&self, context: &str) {
        let errors = self.console_errors().await;
        if !errors.is_empty() {
            let list: Vec<String> = errors
                .iter()
                .map(|e| format!("  [{} {}] {}", e.level, e.source, e.message))
                .collect();
            self.fail(&format!(
                "the browser console has errors ({context}):\n{}",
                list.join("\n")
            ))
            .await;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Screenshots

    /// Save a screenshot of the viewport as `target/ui-screenshots/<test>-<page>.png` and print
    /// where it went.
    pub async fn screenshot(&self, page: &str) -> PathBuf {
        let encoded = self
            .command(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = decode_base64(encoded.as_str().unwrap_or_default())
            .unwrap_or_else(|| panic!("the screenshot is not base64"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create the screenshot directory");
        let path = dir.join(format!("{}-{page}.png", self.test));
        std::fs::write(&path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
        path
    }

    /// Panic with `message`, after saving a `failure` screenshot and listing the console.
    pub async fn fail(&self, message: &str) -> ! {
        let shot = self
            .try_command(reqwest::Method::GET, "/screenshot", Value::Null)
            .await
            .ok()
            .and_then(|v| v.as_str().and_then(decode_base64));
        let mut note = String::new();
        if let Some(png) = shot {
            let dir = screenshot_dir();
            let path = dir.join(format!("{}-failure.png", self.test));
            if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&path, png).is_ok() {
                note = format!("\nscreenshot of the failure: {}", path.display());
            }
        }
        let url = self
            .try_command(reqwest::Method::GET, "/url", Value::Null)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let console = match self
            .try_command(
                reqwest::Method::POST,
                "/se/log",
                json!({ "type": "browser" }),
            )
            .await
        {
            Ok(fresh) => {
                let mut all: Vec<String> = self
                    .console
                    .lock()
                    .expect("console lock")
                    .iter()
                    .map(|e| format!("  [{} {}] {}", e.level, e.source, e.message))
                    .collect();
                all.extend(fresh.as_array().into_iter().flatten().map(|e| {
                    format!(
                        "  [{} {}] {}",
                        e["level"].as_str().unwrap_or_default(),
                        e["source"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    )
                }));
                all.join("\n")
            }
            Err(err) => format!("  (unreadable: {err})"),
        };
        panic!("{message}\npage: {url}{note}\nbrowser console:\n{console}");
    }

    // -----------------------------------------------------------------------------------------
    // Protocol

    /// Send one command of this session; panic with the driver's message when it fails.
    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        match self.try_command(method.clone(), path, body).await {
            Ok(value) => value,
            Err(err) => {
                self.fail(&format!("WebDriver {method} {path} failed: {err}"))
                    .await
            }
        }
    }

    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.session_url));
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body["value"].clone())
        } else {
            Err(format!(
                "{status} {}: {}",
                body["value"]["error"].as_str().unwrap_or("unknown error"),
                body["value"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
            ))
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium cleanly; this runs outside any async context's
        // guarantees (possibly while panicking), so it is a blocking request on a plain socket.
        let _ = delete_session(self.driver_port, &self.session_id);
        let group = nix::unistd::Pid::from_raw(self.driver.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl<'a> Element<'a> {
    /// The JSON reference of this element, to pass to [`Browser::script`].
    pub fn reference(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// Click it the way a user would (scrolled into view, at its centre).
    pub async fn click(&self) {
        self.command(reqwest::Method::POST, "click", json!({}))
            .await;
    }

    /// [`Element::click`], returning the driver's refusal (not interactable, covered by another
    /// element, gone) instead of failing the test.
    pub async fn try_click(&self) -> Result<(), String> {
        self.browser
            .try_command(
                reqwest::Method::POST,
                &format!("/element/{}/click", self.id),
                json!({}),
            )
            .await
            .map(drop)
    }

    /// Type `text` into it.
    pub async fn send_keys(&self, text: &str) {
        self.command(reqwest::Method::POST, "value", json!({ "text": text }))
            .await;
    }

    /// Empty an input or textarea.
    pub async fn clear(&self) {
        self.command(reqwest::Method::POST, "clear", json!({}))
            .await;
    }

    /// Its rendered (visible) text.
    pub async fn text(&self) -> String {
        self.command(reqwest::Method::GET, "text", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Its attribute `name` as written in the DOM (`getAttribute`), if present.
    pub async fn attr(&self, name: &str) -> Option<String> {
        let script = "return arguments[0].getAttribute(arguments[1]);";
        self.browser
            .script(script, json!([self.reference(), name]))
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// Whether it is enabled (not `disabled`).
    pub async fn is_enabled(&self) -> bool {
        self.command(reqwest::Method::GET, "enabled", Value::Null)
            .await
            .as_bool()
            .unwrap_or(false)
    }

    /// The first descendant matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element<'a>> {
        let found = self
            .command(
                reqwest::Method::POST,
                "elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        self.browser.elements(&found).into_iter().next()
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.browser
            .command(method, &format!("/element/{}/{path}", self.id), body)
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// `$var` if set, else `default`; as given when it contains a `/`, else looked up on `PATH`.
/// Panics with the install hint when the file is not there.
fn binary(var: &str, default: &str) -> PathBuf {
    let wanted = std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    let found = if wanted.contains('/') {
        Some(PathBuf::from(&wanted)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(&wanted))
                .find(|p| p.is_file())
        })
    };
    found.unwrap_or_else(|| panic!("{wanted} not found (set {var} to override); {INSTALL_HINT}"))
}

/// `$CARGO_TARGET_DIR/ui-screenshots`, else `<manifest dir>/target/ui-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_relative() { manifest.join(t) } else { t })
        .unwrap_or_else(|| manifest.join("target"));
    target.join("ui-screenshots")
}

/// JavaScript truthiness of a script result.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `DELETE /session/{id}` over a blocking socket, for `Drop`.
fn delete_session(port: u16, session: &str) -> std::io::Result<()> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    Ok(())
}

/// Standard base64 (with or without padding); `None` on a character outside the alphabet.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(
            super::decode_base64("aGVsbG8=").as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(super::decode_base64("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(super::decode_base64("a$"), None);
    }
}

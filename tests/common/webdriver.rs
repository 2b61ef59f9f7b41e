//! A WebDriver client for the browser tests: Debian's chromedriver driving a headless
//! chromium over the W3C WebDriver HTTP API (reqwest, no extra crate).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The bound of every wait: driver start, session, page load, each request.
const WAIT: Duration = Duration::from_secs(30);
/// The W3C key of an element reference in WebDriver replies.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and the chromium it drives; dropping it ends the session and kills both.
pub struct Browser {
    driver: Child,
    base: String,
    session: Option<String>,
    client: reqwest::blocking::Client,
    scratch: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: the browser test needs Debian's chromium and chromium-driver; install them with ./ci/setup-chromium.sh"
            );
        }
        // reqwest is built with rustls and no default provider (see Cargo.toml).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let scratch = tempfile::tempdir().unwrap();
        let log = fs::File::create(scratch.path().join("chromedriver.log")).unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e} (./ci/setup-chromium.sh)"));
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            client: reqwest::blocking::Client::builder()
                .timeout(WAIT)
                .build()
                .unwrap(),
            scratch,
        };
        let start = Instant::now();
        loop {
            let ready = browser
                .client
                .get(format!("{}/status", browser.base))
                .send()
                .ok()
                .and_then(|r| r.text().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(
                start.elapsed() < WAIT,
                "chromedriver not ready after {WAIT:?}: {}",
                browser.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = browser.scratch.path().join("profile");
        let args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--window-size=1400,1000",
        ]
        .into_iter()
        .map(String::from)
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "timeouts": {"pageLoad": WAIT.as_millis() as u64, "script": WAIT.as_millis() as u64},
        }}});
        let session = browser.call("POST", "/session", Some(capabilities));
        browser.session = Some(session["sessionId"].as_str().unwrap().to_string());
        browser
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.scratch.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// One WebDriver command; its `value`. `path` is below the session when there is one.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = match &self.session {
            Some(id) => format!("{}/session/{id}{path}", self.base),
            None => format!("{}{path}", self.base),
        };
        let request = match method {
            "POST" => self
                .client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.unwrap_or(json!({})).to_string()),
            "DELETE" => self.client.delete(&url),
            _ => self.client.get(&url),
        };
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("{method} {url}: {e}\n{}", self.log()));
        let status = response.status();
        let text = response
            .text()
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {url}: not JSON: {e}: {text}"));
        assert!(status.is_success(), "{method} {url}: {status}: {value}");
        value["value"].clone()
    }

    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    pub fn open(&self, page: &Path) {
        let url = format!("file://{}", page.display());
        self.call("POST", "/url", Some(json!({ "url": url })));
        let start = Instant::now();
        while self.execute("return document.readyState", json!([])) != "complete" {
            assert!(start.elapsed() < WAIT, "{url} not loaded after {WAIT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the `index`-th element matching `css` (WebDriver scrolls it into view).
    pub fn click(&self, css: &str, index: usize) {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        let element = found[index][ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {index} for {css}: {found}"))
            .to_string();
        self.call("POST", &format!("/element/{element}/click"), None);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            let url = format!("{}/session/{id}", self.base);
            let _ = self
                .client
                .delete(url)
                .timeout(Duration::from_secs(10))
                .send();
        }
        // The driver's process group, then any chromium left that runs on this test's profile
        // (chromium may leave the group); both were started here.
        let pid = self.driver.id() as i32;
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let profile = self.scratch.path().join("profile");
        let needle = format!("--user-data-dir={}", profile.display());
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

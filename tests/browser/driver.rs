//! A headless Chromium (Debian's `chromium`, driven through `chromedriver`, `.ci/run` installs
//! both) and axe-core, the accessibility checker, injected into the pages it checks.

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The axe-core release the checks run (npm's `axe-core`), installed under `target/` on first use.
const AXE_VERSION: &str = "4.14.1";

/// A browser session; the driver process ends with it.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Browser")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromedriver = which("chromedriver").unwrap_or_else(|| {
            panic!(
                "the browser tests need Debian's chromium and chromium-driver: \
                 apt-get install chromium chromium-driver (.ci/run installs them)"
            )
        });
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            format!("--window-size={width},{height}"),
        ];
        if let Some(lang) = std::env::var_os("CIM_BROWSER_LANG") {
            args.push(format!("--lang={}", lang.to_string_lossy()));
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": which("chromium").map(|p| p.display().to_string()), "args": args }),
        );
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return Browser { client, driver },
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start a session: {last:?}");
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// The WCAG 2.1 A and AA violations axe-core finds on the current page, one line each.
    pub async fn axe_violations(&self) -> Vec<String> {
        let source = axe_source();
        self.client
            .execute(&format!("{source}\n;return typeof window.axe;"), vec![])
            .await
            .expect("axe-core loads into the page");
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } })
              .then(r => done(r.violations.map(v => v.id + " (" + v.impact + "): " + v.help + " at " +
                                 v.nodes.map(n => n.target.join(" ")).join(", "))))
              .catch(e => done(["axe failed: " + e]));
        "#;
        let found: Value = self
            .client
            .execute_async(script, vec![])
            .await
            .expect("axe-core runs");
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }
}

/// axe-core's script: `CIM_AXE_JS` when set, else npm's package installed once under `target/`.
fn axe_source() -> String {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let path = match std::env::var_os("CIM_AXE_JS") {
                Some(p) => PathBuf::from(p),
                None => install_axe(),
            };
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read axe-core at {}: {e}", path.display()))
        })
        .clone()
}

fn install_axe() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-tools");
    let script = root.join(format!("node_modules/axe-core-{AXE_VERSION}.min.js"));
    if script.is_file() {
        return script;
    }
    std::fs::create_dir_all(&root).unwrap();
    let status = Command::new("npm")
        .args([
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
        ])
        .arg(&root)
        .arg(format!("axe-core@{AXE_VERSION}"))
        .status()
        .expect("npm runs (Node.js and npm install axe-core for the accessibility checks)");
    assert!(
        status.success(),
        "npm install axe-core@{AXE_VERSION} failed"
    );
    let installed = root.join("node_modules/axe-core/axe.min.js");
    std::fs::copy(&installed, &script).unwrap();
    script
}

//! Every page loads in the browser with the security headers, the shared header nav, its own
//! module, and a clean console; a run that does not exist gets a message, not a blank page.

use reqwest::Method;
use serde_json::json;

use super::{Ui, assert_same_origin_requests};
use crate::support::webdriver::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_with_its_csp_nav_and_a_clean_console() {
    let ui = Ui::start("", 0).await;
    let browser = Browser::start("pages").await;
    for (path, page, shot) in [
        ("/", "chat", "chat"),
        ("/debug", "debug", "debug-list"),
        ("/servers", "servers", "servers"),
    ] {
        let response = ui.send(Method::GET, path, None).await;
        assert_eq!(response.status(), 200, "{path}");
        let csp = response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(csp, switchboard::web::CONTENT_SECURITY_POLICY, "{path}");

        browser.goto(&ui.url(path)).await;
        browser
            .wait_until_with(
                &format!("the header nav and body[data-page={page}] on {path}"),
                super::PATIENCE,
                "return document.body.dataset.page === arguments[0] \
                   && document.querySelectorAll('header.topbar nav a[data-nav]').length === 3;",
                json!([page]),
            )
            .await;
        let nav = super::rows(
            &browser,
            "header.topbar nav a[data-nav]",
            &["data-nav", "href"],
        )
        .await;
        assert_eq!(
            nav,
            [["chat", "/"], ["debug", "/debug"], ["servers", "/servers"]],
            "{path}"
        );
        // The page's module ran far enough to build something inside <main id="app">.
        browser
            .wait_until_with(
                &format!("the page module to render into main#app on {path}"),
                super::PATIENCE,
                "const app = document.getElementById('app'); \
                 return app && [...app.children].some(c => c.tagName !== 'NOSCRIPT');",
                json!([]),
            )
            .await;
        // Let first fetches settle before judging the console.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        browser.screenshot(shot).await;
        browser.assert_console_clean(path).await;
        assert_same_origin_requests(&browser, path).await;
    }

    // A run id that does not exist: a plain-words error on the page.
    let missing = "/debug/runs/00000000-0000-7000-8000-000000000000";
    browser.goto(&ui.url(missing)).await;
    browser.wait_text(".notice.error").await;
    browser.screenshot("debug-missing-run").await;
    browser.assert_console_clean(missing).await;
    drop(browser);
    ui.server.stop().await;
}

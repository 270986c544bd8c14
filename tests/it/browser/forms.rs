//! `/servers` try-it forms built from schemas with nested objects, arrays (of strings and of
//! objects), enums (`enum` behind a `$ref`, a `oneOf` of constants) and booleans (required, and
//! optional with its "unset" state): rows are added and removed, enums chosen, and the
//! arguments the page sends are exactly what was filled in (the request body, the echo of an
//! MCP server that returns its arguments, and the same call made through the API). In JSON mode,
//! text that does not parse is reported before anything is sent, and schema violations come
//! back as `.try-errors li` with their JSON paths, the same as the API's.

use reqwest::{Method, StatusCode};
use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{JsonObject, Tool};
use serde_json::{Value, json};

use super::{PATIENCE, Ui, assert_same_origin_requests, text_of};
use crate::support::webdriver::Browser;
use crate::support::{McpHttpServer, RoutedTools};

/// The echo server's name in the config, and its tool.
const SERVER: &str = "forms";
const PROBE: &str = "probe";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_it_forms_send_exactly_what_was_filled_in_and_json_mode_reports_errors() {
    let echo = start_echo_mcp().await;
    let ui = Ui::start(&format!("  {SERVER}:\n    url: {}\n", echo.url), 1).await;
    let (_, catalog) = ui.request(Method::GET, "/api/tools", None).await;
    let probe = catalog["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["server"] == SERVER)
        .and_then(|t| t["name"].as_str())
        .unwrap_or_else(|| panic!("the {SERVER} tool is not in the catalog: {catalog:#}"))
        .to_owned();
    let browser = Browser::start("forms").await;
    browser.goto(&ui.url("/servers")).await;
    let entry = format!(
        ".server-card[data-server=\"{SERVER}\"] .tool-entry[data-tool=\"{probe}\"] form.try-it"
    );
    browser.wait_for(&format!("{entry} [name=\"label\"]")).await;
    record_requests(&browser).await;

    // -- The probe form: every kind of field. ---------------------------------------------
    let mut kinds = super::rows(&browser, &format!("{entry} [name]"), &["name", "data-type"]).await;
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ["dry_run", "boolean"],
            ["label", "string"],
            ["mode", "enum"],
            ["unit", "enum"],
            ["verbose", "boolean"],
            ["window.from", "integer"],
            ["window.inclusive", "boolean"],
            ["window.to", "integer"],
        ],
        "the probe form's named controls [name, data-type] before any row is added"
    );
    assert_eq!(
        options(&browser, &format!("{entry} select[name=\"unit\"]")).await,
        ["— choose —", "days", "hours"],
        "select[name=unit] (an enum behind a $ref)"
    );
    assert_eq!(
        options(&browser, &format!("{entry} select[name=\"mode\"]")).await,
        ["— unset —", "fast — Quick", "careful — Thorough"],
        "select[name=mode] (a oneOf of constants)"
    );

    type_into(
        &browser,
        &format!("{entry} [name=\"label\"]"),
        "alpha \"one\"",
    )
    .await;
    browser
        .find(&format!("{entry} [name=\"verbose\"]"))
        .await
        .click()
        .await;
    // The optional boolean cycles unset → true → false: false must be sent, not left out.
    let dry_run = browser.find(&format!("{entry} [name=\"dry_run\"]")).await;
    dry_run.click().await;
    dry_run.click().await;
    assert_eq!(dry_run.attr("data-state").await.as_deref(), Some("false"));
    choose(&browser, &format!("{entry} select[name=\"unit\"]"), "hours").await;
    choose(
        &browser,
        &format!("{entry} select[name=\"mode\"]"),
        "careful — Thorough",
    )
    .await;

    // tags: three rows, then the middle one removed; the rest are renumbered.
    let tags = format!("{entry} .sf-kind-array[data-pointer=\"/tags\"]");
    for (i, tag) in ["a", "b", "c"].iter().enumerate() {
        browser
            .find(&format!("{tags} > .sf-array > .sf-add"))
            .await
            .click()
            .await;
        type_into(&browser, &format!("{entry} [name=\"tags.{i}\"]"), tag).await;
    }
    browser
        .find(&format!(
            "{tags} > .sf-array > .sf-rows > .sf-row:nth-child(2) > .sf-remove"
        ))
        .await
        .click()
        .await;
    let tag_rows = browser
        .script(
            "return [...document.querySelectorAll(arguments[0])] \
               .map(i => [i.name, i.value]);",
            json!([format!("{tags} .sf-row [name]")]),
        )
        .await;
    assert_eq!(
        tag_rows,
        json!([["tags.0", "a"], ["tags.1", "c"]]),
        "the tag rows after removing [1]"
    );

    // filters: one row holding an object (string, integer, optional boolean set to true).
    let filters = format!("{entry} .sf-kind-array[data-pointer=\"/filters\"]");
    browser
        .find(&format!("{filters} > .sf-array > .sf-add"))
        .await
        .click()
        .await;
    type_into(
        &browser,
        &format!("{entry} [name=\"filters.0.field\"]"),
        "name",
    )
    .await;
    type_into(
        &browser,
        &format!("{entry} [name=\"filters.0.limit\"]"),
        "5",
    )
    .await;
    browser
        .find(&format!("{entry} [name=\"filters.0.exact\"]"))
        .await
        .click()
        .await;
    // window: a nested optional object with one field filled.
    type_into(&browser, &format!("{entry} [name=\"window.from\"]"), "10").await;

    let expected = json!({
        "label": "alpha \"one\"",
        "verbose": true,
        "dry_run": false,
        "unit": "hours",
        "mode": "careful",
        "tags": ["a", "c"],
        "filters": [{ "field": "name", "limit": 5, "exact": true }],
        "window": { "from": 10 },
    });
    browser.screenshot("probe-filled").await;
    submit(&browser, &entry).await;
    wait_outcome(&browser, &entry, "ok").await;
    let echoed = text_of(&browser, &format!("{entry} .try-result pre.content-text")).await;
    browser.screenshot("probe-result").await;
    assert_eq!(
        sent(&browser, &probe).await,
        std::slice::from_ref(&expected),
        "the body of POST /api/tools/{probe}/invoke"
    );
    let echoed_value: Value = serde_json::from_str(&echoed)
        .unwrap_or_else(|err| panic!("the echo in .try-result is not JSON ({err}): {echoed:?}"));
    assert_eq!(echoed_value, expected, "the arguments the MCP server got");
    assert_eq!(
        echoed,
        api_text(&ui, &probe, &expected).await,
        ".try-result vs the same call through the API"
    );

    // -- JSON mode. ----------------------------------------------------------------------
    browser
        .find(&format!("{entry} .try-json-toggle"))
        .await
        .click()
        .await;
    let area = format!("{entry} textarea.try-json");
    browser
        .wait_until_with(
            "textarea.try-json to show",
            PATIENCE,
            "const a = document.querySelector(arguments[0]); \
             return a && a.offsetParent !== null;",
            json!([area]),
        )
        .await;
    let switched = browser
        .script(
            "return document.querySelector(arguments[0]).value;",
            json!([area]),
        )
        .await;
    let switched: Value = serde_json::from_str(switched.as_str().unwrap_or_default())
        .unwrap_or_else(|err| panic!("textarea.try-json does not hold JSON ({err}): {switched}"));
    assert_eq!(
        switched, expected,
        "the form's value carried into JSON mode"
    );

    // Text that does not parse: reported at once, nothing sent.
    let requests_before = sent(&browser, &probe).await.len();
    type_over(&browser, &area, "{\"label\": \"x\",").await;
    submit(&browser, &entry).await;
    wait_outcome(&browser, &entry, "client-error").await;
    let errors = try_errors(&browser, &entry).await;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0].0, "",
        "the unparsable JSON's error path: {errors:#?}"
    );
    assert!(
        errors[0].1.contains("(arguments)") && errors[0].1.contains("not valid JSON"),
        "the unparsable JSON's .try-errors li: {errors:#?}"
    );
    let status = text_of(&browser, &format!("{entry} .try-status")).await;
    assert!(status.contains("Not sent"), ".try-status: {status:?}");
    assert_eq!(
        text_of(&browser, &format!("{entry} .try-result")).await,
        "",
        "the previous result still shows next to the error"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        sent(&browser, &probe).await.len(),
        requests_before,
        "unparsable JSON was sent"
    );
    browser.screenshot("json-unparsable").await;

    // Valid JSON that breaks the schema: sent, refused, the errors listed with their paths as
    // the API gives them.
    let invalid = json!({
        "label": "x",
        "verbose": true,
        "unit": "weeks",
        "tags": [],
        "filters": [{ "field": "f", "limit": 0 }],
    });
    type_over(&browser, &area, &invalid.to_string()).await;
    submit(&browser, &entry).await;
    wait_outcome(&browser, &entry, "invalid").await;
    let shown = try_errors(&browser, &entry).await;
    browser.screenshot("json-invalid").await;
    let sent_bodies = sent(&browser, &probe).await;
    assert_eq!(sent_bodies.len(), requests_before + 1, "{sent_bodies:#?}");
    assert_eq!(
        sent_bodies.last(),
        Some(&invalid),
        "the body sent in JSON mode"
    );
    let (status, refusal) = ui
        .request(
            Method::POST,
            &format!("/api/tools/{probe}/invoke"),
            Some(invalid.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal:#}");
    let api_paths: Vec<String> = refusal["error"]["details"]
        .as_array()
        .expect("error details")
        .iter()
        .map(|d| d["path"].as_str().unwrap_or_default().to_owned())
        .collect();
    let shown_paths: Vec<String> = shown.iter().map(|(path, _)| path.clone()).collect();
    assert_eq!(
        shown_paths, api_paths,
        ".try-errors li[data-path] vs the API's details"
    );
    for path in ["/unit", "/filters/0/limit"] {
        let (_, text) = shown
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("no .try-errors li for {path}: {shown:#?}"));
        assert!(text.starts_with(path), "the li of {path} shows {text:?}");
    }

    // -- A bundled tool with an array of strings: calc__evaluate_many. ---------------------
    let many = ".server-card[data-server=\"calc\"] \
                .tool-entry[data-tool=\"calc__evaluate_many\"] form.try-it";
    let expressions = format!("{many} .sf-kind-array[data-pointer=\"/expressions\"]");
    for (i, expression) in ["1+1", "2*3", "7/0"].iter().enumerate() {
        browser
            .find(&format!("{expressions} > .sf-array > .sf-add"))
            .await
            .click()
            .await;
        type_into(
            &browser,
            &format!("{many} [name=\"expressions.{i}\"]"),
            expression,
        )
        .await;
    }
    browser
        .find(&format!(
            "{expressions} > .sf-array > .sf-rows > .sf-row:first-child > .sf-remove"
        ))
        .await
        .click()
        .await;
    let expected = json!({ "expressions": ["2*3", "7/0"] });
    submit(&browser, many).await;
    wait_outcome(&browser, many, "ok").await;
    assert_eq!(
        sent(&browser, "calc__evaluate_many").await,
        std::slice::from_ref(&expected),
        "the body of POST /api/tools/calc__evaluate_many/invoke"
    );
    let result = text_of(&browser, &format!("{many} .try-result pre.content-text")).await;
    assert_eq!(
        result,
        api_text(&ui, "calc__evaluate_many", &expected).await,
        "calc__evaluate_many's .try-result vs the same call through the API"
    );
    assert!(
        result.contains("2*3 = 6") && !result.contains("1+1"),
        "calc__evaluate_many's result: {result:?}"
    );
    browser.screenshot("evaluate-many").await;

    // -- A bundled tool with a schemars enum behind a $ref: clock__date_add. ---------------
    let add = ".server-card[data-server=\"clock\"] \
               .tool-entry[data-tool=\"clock__date_add\"] form.try-it";
    type_into(
        &browser,
        &format!("{add} [name=\"start\"]"),
        "2024-01-31T00:00:00Z",
    )
    .await;
    type_into(&browser, &format!("{add} [name=\"amount\"]"), "1").await;
    choose(&browser, &format!("{add} select[name=\"unit\"]"), "months").await;
    let expected = json!({ "start": "2024-01-31T00:00:00Z", "amount": 1, "unit": "months" });
    submit(&browser, add).await;
    wait_outcome(&browser, add, "ok").await;
    assert_eq!(
        sent(&browser, "clock__date_add").await,
        std::slice::from_ref(&expected),
        "the body of POST /api/tools/clock__date_add/invoke"
    );
    let result = text_of(&browser, &format!("{add} .try-result pre.content-text")).await;
    assert_eq!(
        result,
        api_text(&ui, "clock__date_add", &expected).await,
        "clock__date_add's .try-result vs the same call through the API"
    );
    assert!(
        result.contains("2024-02-29"),
        "clock__date_add's result: {result:?}"
    );
    browser.screenshot("date-add").await;

    browser.assert_console_clean("try-it forms").await;
    assert_same_origin_requests(&browser, "try-it forms").await;
    drop(browser);
    ui.server.stop().await;
    drop(echo);
}

/// Wrap the page's `fetch` so every request body it sends is kept in `window.__sent`.
async fn record_requests(browser: &Browser) {
    browser
        .script(
            "window.__sent = []; const original = window.fetch; \
             window.fetch = function (url, init) { \
               window.__sent.push({ url: String(url), \
                                    body: init && typeof init.body === 'string' ? init.body \
                                                                                  : null }); \
               return original.apply(this, arguments); };",
            Value::Null,
        )
        .await;
}

/// The bodies the page has sent to `POST /api/tools/{tool}/invoke`, parsed.
async fn sent(browser: &Browser, tool: &str) -> Vec<Value> {
    let bodies = browser
        .script(
            "return window.__sent.filter(r => r.url === arguments[0]).map(r => r.body);",
            json!([format!("/api/tools/{tool}/invoke")]),
        )
        .await;
    bodies
        .as_array()
        .expect("recorded bodies")
        .iter()
        .map(|b| {
            serde_json::from_str(b.as_str().unwrap_or("null"))
                .unwrap_or_else(|err| panic!("a request body is not JSON ({err}): {b}"))
        })
        .collect()
}

/// The text of the first content block of `tool`'s answer to `arguments` through the API.
async fn api_text(ui: &Ui, tool: &str, arguments: &Value) -> String {
    let (status, answer) = ui
        .request(
            Method::POST,
            &format!("/api/tools/{tool}/invoke"),
            Some(arguments.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer:#}");
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {tool}'s answer: {answer:#}"))
        .to_owned()
}

/// The labels of a select's options.
async fn options(browser: &Browser, select: &str) -> Vec<String> {
    let labels = browser
        .script(
            "return [...document.querySelector(arguments[0]).options].map(o => o.textContent);",
            json!([select]),
        )
        .await;
    serde_json::from_value(labels).expect("option labels")
}

/// Choose the option labelled `label` by clicking it.
async fn choose(browser: &Browser, select: &str, label: &str) {
    let value = browser
        .script(
            "const o = [...document.querySelector(arguments[0]).options] \
               .find(o => o.textContent === arguments[1]); \
             return o ? o.value : null;",
            json!([select, label]),
        )
        .await;
    let Some(value) = value.as_str() else {
        browser
            .fail(&format!("{select} has no option {label:?}"))
            .await
    };
    browser
        .find(&format!("{select} option[value=\"{value}\"]"))
        .await
        .click()
        .await;
    let chosen = browser
        .script(
            "const s = document.querySelector(arguments[0]); \
             return s.options[s.selectedIndex].textContent;",
            json!([select]),
        )
        .await;
    assert_eq!(
        chosen.as_str(),
        Some(label),
        "{select} after choosing {label:?}"
    );
}

/// Type `text` into the (empty) field `css`.
async fn type_into(browser: &Browser, css: &str, text: &str) {
    browser.find(css).await.send_keys(text).await;
}

/// Replace the text of field `css` with `text`.
async fn type_over(browser: &Browser, css: &str, text: &str) {
    let field = browser.find(css).await;
    field.clear().await;
    field.send_keys(text).await;
}

async fn submit(browser: &Browser, form: &str) {
    browser
        .find(&format!("{form} button[type=submit].try-submit"))
        .await
        .click()
        .await;
}

/// Wait until the form's `data-outcome` is `outcome` (ok, tool-error, invalid, client-error,
/// failed, cancelled).
async fn wait_outcome(browser: &Browser, form: &str, outcome: &str) {
    let last = browser
        .wait_until_with(
            &format!("{form} to end with data-outcome={outcome}"),
            PATIENCE,
            "const f = document.querySelector(arguments[0]); \
             const o = f && f.dataset.outcome; \
             return o ? [o, f.querySelector('.try-status').textContent, \
                         f.querySelector('.try-errors').textContent, \
                         f.querySelector('.try-result').textContent] : null;",
            json!([form]),
        )
        .await;
    if last[0] != outcome {
        browser
            .fail(&format!(
                "{form} ended with {last} (outcome, status, errors, result), not {outcome}"
            ))
            .await;
    }
}

/// The form's `.try-errors li` as `(data-path, text)`.
async fn try_errors(browser: &Browser, form: &str) -> Vec<(String, String)> {
    let items = browser
        .script(
            "return [...document.querySelectorAll(arguments[0])] \
               .map(li => [li.getAttribute('data-path'), li.textContent]);",
            json!([format!("{form} .try-errors li")]),
        )
        .await;
    serde_json::from_value(items).expect("error rows")
}

/// The probe tool's input schema: a nested optional object, an array of strings and one of
/// objects, an enum behind a `$ref` and a `oneOf` of constants, booleans required and optional.
fn probe_schema() -> JsonObject {
    let schema = json!({
        "type": "object",
        "properties": {
            "label": { "type": "string", "description": "A label." },
            "verbose": { "type": "boolean" },
            "dry_run": { "type": "boolean", "description": "Only pretend." },
            "mode": {
                "oneOf": [
                    { "const": "fast", "description": "Quick" },
                    { "const": "careful", "description": "Thorough" },
                ],
            },
            "unit": { "$ref": "#/$defs/Unit" },
            "tags": { "type": "array", "items": { "type": "string" } },
            "filters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": { "type": "string" },
                        "limit": { "type": "integer", "minimum": 1 },
                        "exact": { "type": "boolean" },
                    },
                    "required": ["field"],
                    "additionalProperties": false,
                },
            },
            "window": {
                "type": "object",
                "properties": {
                    "from": { "type": "integer" },
                    "to": { "type": "integer" },
                    "inclusive": { "type": "boolean" },
                },
                "required": ["from"],
                "additionalProperties": false,
            },
        },
        "required": ["label", "verbose", "unit", "tags"],
        "additionalProperties": false,
        "$defs": { "Unit": { "type": "string", "enum": ["days", "hours"] } },
    });
    match schema {
        Value::Object(map) => map,
        _ => unreachable!("the schema is an object"),
    }
}

/// A Streamable HTTP MCP server whose one tool answers with its arguments as JSON text.
async fn start_echo_mcp() -> McpHttpServer {
    let tool = Tool::new(PROBE, "Answers with its arguments as JSON.", probe_schema());
    let mut router = ToolRouter::new();
    router.add_route(ToolRoute::new(
        tool,
        |Parameters(args): Parameters<Value>| args.to_string(),
    ));
    McpHttpServer::start(RoutedTools { router }).await
}

//! A chat whose model turn makes two parallel tool calls: both cards appear live in one group,
//! run, succeed and show their results, the answer renders as Markdown and links to its trace;
//! the trace in `/debug` draws exactly the stored DAG and shows a step's output when its node is
//! clicked; the runs list has the run.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use switchboard_fake_llm::{FakeToolCall, Reply};

use super::{Ui, assert_same_origin_requests, rows, send_chat, text_of};
use crate::support::webdriver::Browser;

/// How long the testkit nap of the second call lasts: long enough to see it running.
const NAP_MS: u64 = 4000;

const ANSWER: &str = "17 × 23 = **391**, and the nap is over.\n\n\
                      - first item\n- second item\n\n\
                      ```\nlet x = 391;\n```\n\n\
                      | a | b |\n|---|---|\n| 1 | 2 |\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_shows_parallel_tool_cards_and_the_trace_draws_the_stored_dag() {
    let ui = Ui::start("", 0).await;
    ui.fake.push(Reply::ToolCalls {
        calls: vec![
            FakeToolCall::new(
                "call_calc",
                "calc__evaluate",
                json!({ "expression": "17*23" }),
            ),
            FakeToolCall::new(
                "call_nap",
                "testkit__sleep",
                json!({ "ms": NAP_MS, "steps": 20 }),
            ),
        ],
        text: None,
    });
    ui.fake.push(Reply::text(ANSWER));
    let browser = Browser::start("chat_and_trace").await;
    browser.goto(&ui.url("/")).await;

    // The unavailable model is listed, disabled, with its reason.
    let hosted = browser
        .wait_for("select#model-select option[value=\"hosted\"]")
        .await;
    assert!(
        hosted.attr("disabled").await.is_some(),
        "model `hosted` (no API key) is not disabled"
    );
    let reason = hosted.attr("title").await.unwrap_or_default();
    assert!(
        !reason.trim().is_empty(),
        "model `hosted` has no reason in its title"
    );
    browser
        .wait_until(
            "select#agent-select with plain chat (value \"\") and agent `calc`",
            "const s = document.querySelector('select#agent-select'); \
             return s && [...s.options].some(o => o.value === '') \
               && [...s.options].some(o => o.value === 'calc');",
        )
        .await;

    let run_id = send_chat(&browser, "What is 17*23? Then take a nap.").await;

    // While the nap runs: its card is running with progress, and the stop button is enabled.
    let live = browser
        .script_async(
            "const done = arguments[arguments.length - 1]; \
             const seen = { running: false, progress: false, stop_enabled: false }; \
             const started = Date.now(); \
             (function poll() { \
               const card = document.querySelector( \
                 '.tool-card[data-tool=\"testkit__sleep\"][data-status=\"running\"]'); \
               if (card) { \
                 seen.running = true; \
                 if (card.querySelector('.tool-progress')) seen.progress = true; \
                 const stop = document.querySelector('button#stop-button'); \
                 if (stop && !stop.disabled) seen.stop_enabled = true; \
               } \
               const finished = document.querySelector( \
                 '.tool-card[data-tool=\"testkit__sleep\"]:not([data-status=\"running\"])'); \
               if ((seen.running && seen.progress && seen.stop_enabled) || finished \
                   || Date.now() - started > 15000) { done(seen); return; } \
               setTimeout(poll, 20); \
             })();",
            Value::Null,
        )
        .await;
    browser.screenshot("chat-running").await;
    assert_eq!(
        live,
        json!({ "running": true, "progress": true, "stop_enabled": true }),
        "while testkit__sleep ran: its card running, its .tool-progress, button#stop-button enabled"
    );

    browser
        .wait_until(
            "both tool cards to reach data-status=succeeded",
            "return document.querySelectorAll( \
               '.message.assistant .tool-card[data-status=\"succeeded\"]').length === 2;",
        )
        .await;
    browser
        .wait_until(
            "the answer to render with 391",
            "const a = document.querySelector('.message.assistant .answer'); \
             return a && a.textContent.includes('391') && a.textContent.includes('nap is over');",
        )
        .await;
    browser
        .wait_until(
            "button#stop-button to be disabled after the run",
            "return document.querySelector('button#stop-button').disabled;",
        )
        .await;

    // One group, marked parallel, holding both cards.
    let groups = rows(
        &browser,
        ".message.assistant .tool-group",
        &["data-parallel"],
    )
    .await;
    assert_eq!(groups, [["true"]], "one parallel .tool-group");
    let cards = browser
        .script(
            "return [...document.querySelectorAll('.message.assistant .tool-group .tool-card')]\
               .map(c => { const t = s => { const e = c.querySelector(s); \
                                             return e ? e.textContent : null; }; \
                 return { tool: c.dataset.tool, step: c.dataset.step, status: c.dataset.status, \
                          name: t('.tool-name'), server: t('.tool-server'), args: t('.tool-args'), \
                          duration: t('.tool-duration'), result: t('.tool-result'), \
                          status_text: t('.tool-status') }; });",
            Value::Null,
        )
        .await;
    let cards = cards.as_array().expect("cards");
    assert_eq!(cards.len(), 2, "{cards:#?}");
    let card = |tool: &str| {
        cards
            .iter()
            .find(|c| c["tool"] == tool)
            .unwrap_or_else(|| panic!("no .tool-card[data-tool={tool}] in the group: {cards:#?}"))
    };
    let calc = card("calc__evaluate");
    let nap = card("testkit__sleep");
    for (card, short, server, args, result) in [
        (
            calc,
            "evaluate",
            "calc",
            "17*23".to_owned(),
            "391".to_owned(),
        ),
        (
            nap,
            "sleep",
            "testkit",
            NAP_MS.to_string(),
            format!("slept {NAP_MS} ms"),
        ),
    ] {
        let field = |name: &str| card[name].as_str().unwrap_or_default().to_owned();
        assert!(field("name").contains(short), "{card:#}");
        assert!(field("server").contains(server), "{card:#}");
        assert!(field("args").contains(args.as_str()), "{card:#}");
        assert!(field("result").contains(&result), "{card:#}");
        assert!(!field("duration").trim().is_empty(), "{card:#}");
        assert!(!field("status_text").trim().is_empty(), "{card:#}");
    }

    // The answer is rendered Markdown.
    let answer = browser
        .script(
            "const a = document.querySelector('.message.assistant .answer'); \
             const t = s => [...a.querySelectorAll(s)].map(e => e.textContent.trim()); \
             return { strong: t('strong'), li: t('li'), pre: t('pre'), td: t('td') };",
            Value::Null,
        )
        .await;
    assert_eq!(
        answer,
        json!({
            "strong": ["391"],
            "li": ["first item", "second item"],
            "pre": ["let x = 391;"],
            "td": ["1", "2"],
        }),
        "the answer's Markdown (bold, list, code block, table)"
    );

    // The trace link names this run, which the API knows.
    let href = browser
        .find(".message.assistant a.trace-link")
        .await
        .attr("href")
        .await
        .unwrap_or_default();
    assert!(
        href == format!("/debug/runs/{run_id}") || href == ui.url(&format!("/debug/runs/{run_id}")),
        "a.trace-link href is {href:?}, expected /debug/runs/{run_id}"
    );
    let run = ui.ended_run(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let acts: BTreeSet<(String, String)> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "act")
        .map(|s| {
            (
                s["index"].to_string(),
                s["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let carded: BTreeSet<(String, String)> = cards
        .iter()
        .map(|c| {
            (
                c["step"].as_str().unwrap_or_default().to_owned(),
                c["tool"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(carded, acts, "the cards' data-step are the run's act steps");
    browser.screenshot("chat").await;
    browser.assert_console_clean("chat").await;
    assert_same_origin_requests(&browser, "chat").await;

    // Follow the link to the trace.
    browser
        .find(".message.assistant a.trace-link")
        .await
        .click()
        .await;
    browser
        .wait_until_with(
            "the trace link to open /debug/runs/<id>",
            super::PATIENCE,
            "return location.pathname === arguments[0];",
            json!([format!("/debug/runs/{run_id}")]),
        )
        .await;
    check_dag(&browser, &run).await;
    let header = browser.wait_text("#run-header .run-status").await;
    assert!(
        header.contains("succeeded"),
        "#run-header .run-status: {header:?}"
    );

    // Clicking an act node shows that call in the step detail.
    let step_of = |tool: &str| {
        run["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["name"] == tool)
            .and_then(|s| s["index"].as_u64())
            .unwrap_or_else(|| panic!("no step for {tool}: {run:#}"))
    };
    let calc_step = step_of("calc__evaluate");
    browser
        .find(&format!("svg#dag g.dag-node[data-step=\"{calc_step}\"]"))
        .await
        .click()
        .await;
    wait_selected(&browser, calc_step).await;
    browser
        .wait_until(
            "#step-detail .step-output to show 391 after clicking the calc node",
            "const o = document.querySelector('#step-detail .step-output'); \
             return o && o.textContent.includes('391');",
        )
        .await;
    let input = text_of(&browser, "#step-detail .step-input").await;
    assert!(
        input.contains("17*23"),
        "#step-detail .step-input: {input:?}"
    );
    let server = text_of(&browser, "#step-detail .step-server").await;
    assert!(
        server.contains("calc"),
        "#step-detail .step-server: {server:?}"
    );
    let timing = text_of(&browser, "#step-detail .step-timing").await;
    assert!(
        !timing.trim().is_empty(),
        "#step-detail .step-timing is empty"
    );
    browser.screenshot("debug-run").await;

    // Clicking a waterfall row selects that step too.
    let nap_step = step_of("testkit__sleep");
    browser
        .find(&format!("#waterfall .wf-row[data-step=\"{nap_step}\"]"))
        .await
        .click()
        .await;
    wait_selected(&browser, nap_step).await;
    browser
        .wait_until_with(
            "#step-detail .step-output to show the nap after clicking its waterfall row",
            super::PATIENCE,
            "const o = document.querySelector('#step-detail .step-output'); \
             return o && o.textContent.includes(arguments[0]);",
            json!([format!("slept {NAP_MS} ms")]),
        )
        .await;
    browser.screenshot("debug-run-waterfall").await;
    browser.assert_console_clean("debug run").await;
    assert_same_origin_requests(&browser, "debug run").await;

    // The runs list has it, linking to it.
    browser.goto(&ui.url("/debug")).await;
    let row = browser
        .wait_for(&format!(
            "table#runs-table tr.run-row[data-run-id=\"{run_id}\"]"
        ))
        .await;
    assert_eq!(row.attr("data-status").await.as_deref(), Some("succeeded"));
    assert!(
        row.try_find(&format!("a[href$=\"/debug/runs/{run_id}\"]"))
            .await
            .is_some(),
        "tr.run-row of {run_id} has no link to /debug/runs/{run_id}"
    );
    for id in [
        "select#filter-status",
        "select#filter-agent",
        "select#filter-model",
        "input#filter-since",
        "input#filter-until",
        "input#filter-search",
    ] {
        assert!(
            browser
                .try_find(&format!("#run-filters {id}"))
                .await
                .is_some(),
            "no {id} in #run-filters"
        );
    }
    browser.screenshot("debug-list").await;
    browser.assert_console_clean("debug list").await;
    assert_same_origin_requests(&browser, "debug list").await;
    drop(browser);
    ui.server.stop().await;
}

/// `svg#dag` has exactly one node per stored step (index, kind, status, with a label and a
/// title) and exactly one edge per stored edge; `#waterfall` one row with a bar per step.
async fn check_dag(browser: &Browser, run: &Value) {
    let steps = run["steps"].as_array().expect("steps");
    let expected_nodes: Vec<Vec<String>> = {
        let mut nodes: Vec<Vec<String>> = steps
            .iter()
            .map(|s| {
                vec![
                    s["index"].to_string(),
                    s["kind"].as_str().unwrap_or_default().to_owned(),
                    s["status"].as_str().unwrap_or_default().to_owned(),
                    "true".to_owned(),
                ]
            })
            .collect();
        nodes.sort();
        nodes
    };
    let expected_edges: Vec<Vec<String>> = {
        let mut edges: Vec<Vec<String>> = run["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| vec![e["from"].to_string(), e["to"].to_string()])
            .collect();
        edges.sort();
        edges
    };
    browser
        .wait_until_with(
            "svg#dag to draw one g.dag-node per step",
            super::PATIENCE,
            "return document.querySelectorAll('svg#dag g.dag-node').length === arguments[0];",
            json!([steps.len()]),
        )
        .await;
    let nodes = browser
        .script(
            "return [...document.querySelectorAll('svg#dag g.dag-node')].map(n => [ \
               n.getAttribute('data-step'), n.getAttribute('data-kind'), \
               n.getAttribute('data-status'), \
               String(!!n.querySelector('text') && !!n.querySelector('title'))]);",
            Value::Null,
        )
        .await;
    let mut nodes: Vec<Vec<String>> = serde_json::from_value(nodes).expect("node rows");
    nodes.sort();
    assert_eq!(
        nodes, expected_nodes,
        "svg#dag nodes [data-step, data-kind, data-status, has text and title] vs the stored steps"
    );
    let mut edges = rows(browser, "svg#dag path.dag-edge", &["data-from", "data-to"]).await;
    edges.sort();
    assert_eq!(
        edges, expected_edges,
        "svg#dag path.dag-edge vs the stored edges"
    );
    let bars = browser
        .script(
            "return [...document.querySelectorAll('#waterfall .wf-row[data-step]')] \
               .map(r => [r.getAttribute('data-step'), String(!!r.querySelector('.wf-bar'))]);",
            Value::Null,
        )
        .await;
    let mut bars: Vec<Vec<String>> = serde_json::from_value(bars).expect("waterfall rows");
    bars.sort();
    let mut expected_bars: Vec<Vec<String>> = steps
        .iter()
        .map(|s| vec![s["index"].to_string(), "true".to_owned()])
        .collect();
    expected_bars.sort();
    assert_eq!(
        bars, expected_bars,
        "#waterfall .wf-row[data-step] with .wf-bar, one per step"
    );
}

/// Wait until step `step` is the selected one: class `selected` on its node and its waterfall
/// row, and on no other node or row.
async fn wait_selected(browser: &Browser, step: u64) {
    browser
        .wait_until_with(
            &format!("step {step} to be selected (class `selected` on its node and row only)"),
            super::PATIENCE,
            "const s = String(arguments[0]); \
             const sel = [...document.querySelectorAll('svg#dag g.dag-node.selected, \
                                                        #waterfall .wf-row.selected')]; \
             return sel.length === 2 && sel.every(e => e.getAttribute('data-step') === s);",
            json!([step]),
        )
        .await;
}

/// The stop button cancels a running run (the card ends `cancelled`, the run says so in plain
/// words); a model that fails gets a plain-words notice too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_a_run_and_failures_are_explained() {
    let ui = Ui::start("", 0).await;
    ui.fake.push(Reply::tool_call(
        "call_long_nap",
        "testkit__sleep",
        json!({ "ms": 30_000, "steps": 300 }),
    ));
    let browser = Browser::start("stop_and_failure").await;
    browser.goto(&ui.url("/")).await;
    let run_id = send_chat(&browser, "Take a very long nap.").await;
    browser
        .wait_for(".tool-card[data-tool=\"testkit__sleep\"][data-status=\"running\"]")
        .await;
    let stop = browser.find("button#stop-button").await;
    assert!(
        stop.is_enabled().await,
        "button#stop-button is disabled while the run runs"
    );
    stop.click().await;
    browser
        .wait_for(".tool-card[data-tool=\"testkit__sleep\"][data-status=\"cancelled\"]")
        .await;
    browser.wait_text(".message.assistant .run-notice").await;
    let run = ui.ended_run(&run_id).await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    browser
        .wait_until(
            "button#stop-button to be disabled after the cancel",
            "return document.querySelector('button#stop-button').disabled;",
        )
        .await;
    browser.screenshot("chat-cancelled").await;

    // Nothing is scripted now: the fake model answers 500, and the run fails.
    let failed_id = send_chat(&browser, "Are you there?").await;
    let notice = browser
        .wait_until_with(
            "a .run-notice on the failed run's message",
            super::PATIENCE,
            "const m = document.querySelector( \
               `.message.assistant[data-run-id=\"${arguments[0]}\"] .run-notice`); \
             return m && m.textContent.trim();",
            json!([failed_id]),
        )
        .await;
    assert!(notice.as_str().is_some_and(|n| !n.is_empty()), "{notice}");
    let run = ui.ended_run(&failed_id).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    browser.screenshot("chat-failed").await;
    browser.assert_console_clean("chat stop and failure").await;
    assert_same_origin_requests(&browser, "chat stop and failure").await;
    drop(browser);
    ui.server.stop().await;
}

/// A run that answered after a tool call failed is `partial`: the chat says so as a warning,
/// `/debug` shows its badge in its own colour with the note, and the runs filter offers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_run_is_shown_as_partial_in_chat_and_debug() {
    let ui = Ui::start("", 0).await;
    ui.fake.push(Reply::ToolCalls {
        calls: vec![
            FakeToolCall::new(
                "call_fail",
                "testkit__fail",
                json!({ "message": "the disk is on fire" }),
            ),
            FakeToolCall::new(
                "call_calc",
                "calc__evaluate",
                json!({ "expression": "2+2" }),
            ),
        ],
        text: None,
    });
    ui.fake
        .push(Reply::text("2+2 is 4; the other part failed."));
    let browser = Browser::start("partial_run").await;
    browser.goto(&ui.url("/")).await;
    let run_id = send_chat(&browser, "Add, and do the risky thing.").await;
    let notice = browser
        .wait_until_with(
            "a warning .run-notice on the partial run's message",
            super::PATIENCE,
            "const m = document.querySelector( \
               `.message.assistant[data-run-id=\"${arguments[0]}\"] .run-notice.warn`); \
             return m && m.textContent.trim();",
            json!([run_id]),
        )
        .await;
    assert!(
        notice
            .as_str()
            .is_some_and(|n| n.contains("Partial answer") && n.contains("testkit__fail")),
        "{notice}"
    );
    let run = ui.ended_run(&run_id).await;
    assert_eq!(run["status"], "partial", "{run:#}");

    // The run's page: the badge, and the note as a warning rather than an error.
    browser
        .goto(&ui.url(&format!("/debug/runs/{run_id}")))
        .await;
    let badge = browser
        .wait_for(".run-title .run-status.status-partial")
        .await;
    assert_eq!(badge.text().await.trim(), "partial");
    let note = browser.wait_text(".notice.warn.run-partial").await;
    assert!(note.contains("testkit__fail"), "{note}");
    assert!(
        browser.try_find(".run-error").await.is_none(),
        "a partial run is not shown as an error"
    );
    let colours = browser
        .script(
            "const probe = (cls) => { const e = document.createElement('span'); \
               e.className = `badge ${cls}`; document.body.append(e); \
               const c = getComputedStyle(e).color; e.remove(); return c; }; \
             return [probe('status-partial'), probe('status-succeeded'), \
                     probe('status-failed'), probe('status-budget_exhausted')];",
            json!([]),
        )
        .await;
    let colours: Vec<String> = serde_json::from_value(colours).expect("colours");
    let distinct: BTreeSet<&String> = colours.iter().collect();
    assert_eq!(distinct.len(), 4, "partial has its own colour: {colours:?}");

    // The runs list: the filter offers `partial` and finds the run.
    browser.goto(&ui.url("/debug?status=partial")).await;
    browser
        .wait_for("select#filter-status option[value=\"partial\"]")
        .await;
    browser
        .wait_until_with(
            "the partial run listed under the partial filter",
            super::PATIENCE,
            "const rows = [...document.querySelectorAll('tr.run-row')]; \
             return rows.length === 1 && rows[0].dataset.runId === arguments[0] \
               && rows[0].dataset.status === 'partial' \
               && !!rows[0].querySelector('.run-status.status-partial');",
            json!([run_id]),
        )
        .await;
    browser.screenshot("debug-partial").await;
    browser.assert_console_clean("partial run").await;
    assert_same_origin_requests(&browser, "partial run").await;
    drop(browser);
    ui.server.stop().await;
}

//! The body of a run that is one tool call a client chose (`Work::Call`): a single act step,
//! made as a model's call is made (`call::invoke`: the approval gate, the call, its updates), so
//! it is traced, approved and refused exactly like one; the tool's result is the run's answer.
//!
//! Such a run is never durable: its client waits on the request that started it, and a call
//! made after that client is gone would act for nobody.

use serde_json::Value;

use super::checkpoint::{ActPoint, Body, Journal, TurnJournal};
use super::recorder::Recorder;
use super::tools::{self, ToolFailure};
use super::{Answer, DirectCall, RunSpec, Stop, call, react};
use crate::domain::StepKind;

/// Make `tool_call` as the run's only step.
pub(crate) async fn run(
    spec: &RunSpec,
    recorder: &Recorder,
    journal: &Journal,
    direct: &DirectCall,
) -> Result<Answer, Stop> {
    let tool_call = &direct.call;
    // Not durable, so the checkpoint body is never asked for.
    let snapshot = |_: Vec<ActPoint>| -> Body { unreachable_checkpoint() };
    let turn = TurnJournal::open(journal, recorder, &snapshot, vec![ActPoint::NotStarted]);
    let name = tool_call.name.as_str();
    let input = super::admit::input_of(&tool_call.arguments);
    let server = spec.tools.server_of(name);
    let step = recorder.start(StepKind::Act, name, server, input, None, Vec::new());
    let outcome = match serde_json::from_str::<Value>(&tool_call.arguments) {
        Ok(arguments) => {
            call::invoke(spec, recorder, step, name, arguments, turn.act(0), None).await
        }
        Err(err) => Err(ToolFailure::InvalidArguments {
            errors: vec![format!("the arguments are not valid JSON ({err})")],
        }),
    };
    if let Ok(output) = &outcome {
        // Set once (this body runs once per run), and before the step's end is announced: a
        // client answered at `StepFinished` finds it.
        let _ = direct.result.set(output.clone());
    }
    react::finish_act(recorder, step, name, &outcome);
    match outcome {
        Ok(output) if !output.is_error => Ok(Answer {
            text: output.text,
            gaps: super::gaps::Gaps::default(),
        }),
        Ok(output) => Err(Stop::Failed(tools::cap(&output.text))),
        Err(failure) => Err(Stop::Failed(tools::describe_failure(name, &failure))),
    }
}

/// A direct call's journal has no checkpoint sink (`RunService` gives it none).
fn unreachable_checkpoint() -> Body {
    Body::React(super::checkpoint::ReactPoint {
        messages: Vec::new(),
        after: Vec::new(),
        repeats: Vec::new(),
        gaps: super::gaps::Gaps::default(),
        turn: None,
    })
}

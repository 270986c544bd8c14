//! The `calc` server: a safe arithmetic evaluator exposed as MCP tools.
//!
//! Expressions are parsed by our own recursive-descent parser ([`parser`]) into a tree
//! and evaluated by [`eval`]; nothing is ever handed to an interpreter, so there is no
//! way to run code. Input is capped (length, nesting depth) and every failure, from a
//! syntax error to a division by zero, comes back as an `isError` result that names
//! the column.

use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock},
    tool, tool_handler, tool_router,
};
use serde::Deserialize;

pub mod eval;
pub mod parser;

pub use parser::{CalcError, MAX_DEPTH, MAX_LEN};

/// Most expressions one `evaluate_many` call accepts.
pub const MAX_BATCH: usize = 100;

/// Evaluate `text` to a finite number.
///
/// # Errors
///
/// A [`CalcError`] describing the first syntax or arithmetic problem and its column.
pub fn evaluate(text: &str) -> Result<f64, CalcError> {
    eval::evaluate(&parser::parse(text)?)
}

/// Format a result the way a person would write it: integers without a fraction,
/// very large or very small magnitudes in scientific notation, otherwise the shortest
/// decimal that round-trips.
pub fn format_number(value: f64) -> String {
    if value == 0.0 {
        // Also turns -0 into 0.
        return "0".to_owned();
    }
    let magnitude = value.abs();
    if !(1e-7..1e16).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// The `calc` MCP server.
#[derive(Debug, Clone)]
pub struct Calc {
    tool_router: ToolRouter<Self>,
}

impl Default for Calc {
    fn default() -> Self {
        Self::new()
    }
}

/// Arguments of `evaluate`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EvaluateArgs {
    /// The arithmetic expression, e.g. `2 * (3 + 4) ^ 2 / sqrt(16)`. At most 4096
    /// characters.
    pub expression: String,
}

/// Arguments of `evaluate_many`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EvaluateManyArgs {
    /// The expressions to evaluate independently, at most 100.
    pub expressions: Vec<String>,
}

const EVALUATE_DESCRIPTION: &str = "Evaluate an arithmetic expression exactly as written and \
return the number. Supports numbers (42, 0.5, 1e3), + - * / % (remainder), ^ or ** \
(power, right-associative; -2^2 = -4), parentheses, unary minus, the constants pi, e, tau, \
and the functions sqrt abs sin cos tan asin acos atan atan2 ln log10 log2 exp floor ceil \
round min max (any number of arguments) pow hypot. Angles are in radians. Errors (syntax, \
division by zero, overflow, domain) name the column where they occur. Use this instead of \
doing arithmetic in your head.";

#[tool_router]
impl Calc {
    /// Create the server.
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = EVALUATE_DESCRIPTION,
        annotations(
            title = "Evaluate expression",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn evaluate(&self, Parameters(args): Parameters<EvaluateArgs>) -> CallToolResult {
        match evaluate(&args.expression) {
            Ok(value) => CallToolResult::success(vec![ContentBlock::text(format_number(value))]),
            Err(err) => CallToolResult::error(vec![ContentBlock::text(err.to_string())]),
        }
    }

    #[tool(
        description = "Evaluate several independent arithmetic expressions (same syntax as \
                       `evaluate`) in one call. Returns one line per expression, \
                       `<n>: <expression> = <value>` or `<n>: <expression> -> error: <reason>`. \
                       The call is an error only when every expression fails.",
        annotations(
            title = "Evaluate expressions",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn evaluate_many(&self, Parameters(args): Parameters<EvaluateManyArgs>) -> CallToolResult {
        if args.expressions.is_empty() {
            return CallToolResult::error(vec![ContentBlock::text("no expressions given")]);
        }
        if args.expressions.len() > MAX_BATCH {
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "{} expressions given; the limit is {MAX_BATCH}",
                args.expressions.len()
            ))]);
        }
        let mut lines = Vec::with_capacity(args.expressions.len());
        let mut failures = 0;
        for (index, expression) in args.expressions.iter().enumerate() {
            let shown = expression.trim();
            match evaluate(expression) {
                Ok(value) => {
                    lines.push(format!("{}: {shown} = {}", index + 1, format_number(value)))
                }
                Err(err) => {
                    failures += 1;
                    lines.push(format!("{}: {shown} -> error: {err}", index + 1));
                }
            }
        }
        let content = vec![ContentBlock::text(lines.join("\n"))];
        if failures == args.expressions.len() {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        }
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "calc",
    instructions = "Exact arithmetic. Call `evaluate` for any calculation instead of computing \
                    it yourself."
)]
impl ServerHandler for Calc {}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expected: f64) {
        match evaluate(text) {
            Ok(value) => assert!(
                (value - expected).abs() <= 1e-12 * expected.abs().max(1.0),
                "{text}: got {value}, expected {expected}"
            ),
            Err(err) => panic!("{text}: unexpected error {err}"),
        }
    }

    #[track_caller]
    fn check_err(text: &str, expected: &str) {
        match evaluate(text) {
            Ok(value) => panic!("{text}: expected an error, got {value}"),
            Err(err) => assert_eq!(err.to_string(), expected, "input: {text}"),
        }
    }

    #[test]
    fn numbers() {
        check("42", 42.0);
        check("0.5", 0.5);
        check(".5", 0.5);
        check("1e3", 1000.0);
        check("2.5E-2", 0.025);
        check("1e+2", 100.0);
    }

    #[test]
    fn precedence() {
        check("1 + 2 * 3", 7.0);
        check("(1 + 2) * 3", 9.0);
        check("2 * 3 ^ 2", 18.0);
        check("-2 ^ 2", -4.0);
        check("(-2) ^ 2", 4.0);
        check("2 ^ -1", 0.5);
        check("10 - 4 - 3", 3.0);
        check("100 / 10 / 5", 2.0);
        check("7 % 4 * 2", 6.0);
        check("1 + -2", -1.0);
        check("--3", 3.0);
        check("+3", 3.0);
        check("2 * -3", -6.0);
    }

    #[test]
    fn associativity() {
        check("2 ^ 3 ^ 2", 512.0);
        check("2 ** 3 ** 2", 512.0);
        check("(2 ^ 3) ^ 2", 64.0);
        check("8 - 2 - 1", 5.0);
        check("64 / 4 / 2", 8.0);
    }

    #[test]
    fn constants_and_functions() {
        check("pi", std::f64::consts::PI);
        check("PI * 2", std::f64::consts::TAU);
        check("tau", std::f64::consts::TAU);
        check("e", std::f64::consts::E);
        check("sqrt(16)", 4.0);
        check("abs(-3)", 3.0);
        check("sin(0) + cos(0)", 1.0);
        check("tan(0)", 0.0);
        check("asin(1)", std::f64::consts::FRAC_PI_2);
        check("acos(1)", 0.0);
        check("atan(1) * 4", std::f64::consts::PI);
        check("atan2(1, 1)", std::f64::consts::FRAC_PI_4);
        check("ln(e)", 1.0);
        check("log10(1000)", 3.0);
        check("log2(8)", 3.0);
        check("exp(0)", 1.0);
        check("floor(2.7) + ceil(2.1) + round(2.5)", 8.0);
        check("min(3, 1, 2)", 1.0);
        check("max(3, 1, 2, 9)", 9.0);
        check("max(5)", 5.0);
        check("pow(2, 10)", 1024.0);
        check("hypot(3, 4)", 5.0);
        check("sqrt(sqrt(256))", 4.0);
        check("Sqrt(4)", 2.0);
    }

    #[test]
    fn arithmetic_errors_name_the_column() {
        check_err("1 / 0", "division by zero at column 3");
        check_err("5 % (2 - 2)", "remainder (`%`) by zero at column 3");
        check_err(
            "sqrt(-1)",
            "result of `sqrt` is not a real number at column 1",
        );
        check_err(
            "10 ^ 400",
            "result of `^` is not finite (overflow or division by zero) at column 4",
        );
        check_err(
            "1e308 * 10",
            "result of `*` is not finite (overflow or division by zero) at column 7",
        );
        check_err(
            "ln(0)",
            "result of `ln` is not finite (overflow or division by zero) at column 1",
        );
        check_err(
            "(-8) ^ (1/3)",
            "result of `^` is not a real number at column 6",
        );
        check_err("1e999", "number `1e999` is too large at column 1");
        check_err(
            "unexpected )",
            "unknown name `unexpected` (constants: pi, e, tau) at column 1",
        );
        check_err("(1+2))", "unexpected `)` at column 6");
    }

    #[test]
    fn formatting() {
        assert_eq!(format_number(4.0), "4");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_number(1e20), "1e20");
        assert_eq!(format_number(1.5e-9), "1.5e-9");
        assert_eq!(format_number(123456.5), "123456.5");
    }

    #[test]
    fn tools_return_is_error() {
        let calc = Calc::new();
        let ok = calc.evaluate(Parameters(EvaluateArgs {
            expression: "6*7".into(),
        }));
        assert_eq!(ok.is_error, Some(false));
        assert_eq!(ok.content[0].as_text().map(|t| t.text.as_str()), Some("42"));
        let bad = calc.evaluate(Parameters(EvaluateArgs {
            expression: "6/0".into(),
        }));
        assert_eq!(bad.is_error, Some(true));
        let many = calc.evaluate_many(Parameters(EvaluateManyArgs {
            expressions: vec!["1+1".into(), "1/0".into()],
        }));
        assert_eq!(many.is_error, Some(false));
        let text = &many.content[0].as_text().map(|t| t.text.clone());
        assert_eq!(
            text.as_deref(),
            Some("1: 1+1 = 2\n2: 1/0 -> error: division by zero at column 2")
        );
        let tools = calc.tool_router.list_all();
        assert_eq!(tools.len(), 2);
        assert!(tools.iter().all(|t| t.annotations.is_some()));
    }

    /// A small deterministic generator, so the fuzz test is reproducible without a
    /// dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn fuzz_never_panics() {
        const PIECES: &[&str] = &[
            "(", ")", "(", ")", "+", "-", "*", "/", "%", "^", "**", ",", ".", "e", "1", "0", "9",
            "2.5", "1e", "1e400", "pi", "sqrt(", "max(", "pow(", "foo", " ", "$", "é", "∞", "-",
            "--", "1e-400", "0.0",
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let len = rng.below(40);
            let mut text = String::new();
            for _ in 0..len {
                text.push_str(PIECES[rng.below(PIECES.len())]);
            }
            if let Ok(value) = evaluate(&text) {
                assert!(value.is_finite(), "{text} gave {value}");
            }
        }
        // Arbitrary bytes decoded lossily.
        for _ in 0..5_000 {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = evaluate(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        for text in [
            "(".repeat(4096),
            "(".repeat(2000) + &")".repeat(2000),
            "-".repeat(4000) + "1",
            "2^".repeat(2000) + "2",
            "sqrt(".repeat(800),
            "1+".repeat(2047) + "1",
            "1*".repeat(2047) + "1",
        ] {
            let _ = evaluate(&text);
        }
        let long_sum = "1+".repeat(2047) + "1";
        check(&long_sum, 2048.0);
    }
}

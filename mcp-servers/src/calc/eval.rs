//! Evaluation of a parsed calc [`Expr`] to a finite `f64`.
//!
//! Every intermediate result must be finite: a division by zero, an overflow or a
//! domain error (`sqrt(-1)`) stops evaluation with a [`CalcError`] that names the
//! operator or function and its column. Recursion depth is bounded by the parser's
//! nesting cap, since sums and products are evaluated as flat loops.

use super::parser::{BinaryOp, CalcError, Expr, Function};

/// Evaluate `expr`.
///
/// # Errors
///
/// A [`CalcError`] at the first operation whose result is not a finite number.
pub fn evaluate(expr: &Expr) -> Result<f64, CalcError> {
    match expr {
        Expr::Number(value) => Ok(*value),
        Expr::Constant { value, .. } => Ok(*value),
        Expr::Negate { operand, .. } => Ok(-evaluate(operand)?),
        Expr::Chain { first, rest } => {
            let mut acc = evaluate(first)?;
            for (op, column, operand) in rest {
                let rhs = evaluate(operand)?;
                acc = binary(*op, acc, rhs, *column)?;
            }
            Ok(acc)
        }
        Expr::Power {
            base,
            exponent,
            column,
        } => {
            let base = evaluate(base)?;
            let exponent = evaluate(exponent)?;
            finite(base.powf(exponent), *column, "`^`")
        }
        Expr::Call {
            function,
            args,
            column,
        } => {
            let values = args.iter().map(evaluate).collect::<Result<Vec<_>, _>>()?;
            call(*function, &values, *column)
        }
    }
}

fn binary(op: BinaryOp, lhs: f64, rhs: f64, column: usize) -> Result<f64, CalcError> {
    let value = match op {
        BinaryOp::Add => lhs + rhs,
        BinaryOp::Subtract => lhs - rhs,
        BinaryOp::Multiply => lhs * rhs,
        BinaryOp::Divide if rhs == 0.0 => {
            return Err(CalcError::at(column, "division by zero"));
        }
        BinaryOp::Divide => lhs / rhs,
        BinaryOp::Remainder if rhs == 0.0 => {
            return Err(CalcError::at(column, "remainder (`%`) by zero"));
        }
        BinaryOp::Remainder => lhs % rhs,
    };
    finite(value, column, &format!("`{}`", op.symbol()))
}

fn call(function: Function, args: &[f64], column: usize) -> Result<f64, CalcError> {
    // The parser checked the arity, so indexing the first arguments is safe; `arg`
    // still avoids a panic should that invariant ever break.
    let arg = |i: usize| args.get(i).copied().unwrap_or(f64::NAN);
    let x = arg(0);
    let value = match function.name {
        "sqrt" => x.sqrt(),
        "abs" => x.abs(),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "tan" => x.tan(),
        "asin" => x.asin(),
        "acos" => x.acos(),
        "atan" => x.atan(),
        "atan2" => x.atan2(arg(1)),
        "ln" => x.ln(),
        "log10" => x.log10(),
        "log2" => x.log2(),
        "exp" => x.exp(),
        "floor" => x.floor(),
        "ceil" => x.ceil(),
        "round" => x.round(),
        "min" => args.iter().copied().fold(f64::INFINITY, f64::min),
        "max" => args.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "pow" => x.powf(arg(1)),
        "hypot" => x.hypot(arg(1)),
        other => {
            return Err(CalcError::at(column, format!("unknown function `{other}`")));
        }
    };
    finite(value, column, &format!("`{}`", function.name))
}

fn finite(value: f64, column: usize, what: &str) -> Result<f64, CalcError> {
    if value.is_nan() {
        Err(CalcError::at(
            column,
            format!("result of {what} is not a real number"),
        ))
    } else if value.is_infinite() {
        Err(CalcError::at(
            column,
            format!("result of {what} is not finite (overflow or division by zero)"),
        ))
    } else {
        Ok(value)
    }
}

//! Lexer and recursive-descent parser for calc expressions.
//!
//! Turns text into an [`Expr`] tree and nothing else: no evaluation happens here, and
//! no identifier is resolved except to check that it names a known constant or function.
//! Every node keeps the 1-based column of its operator or first character so that
//! errors found later can point at it.
//!
//! Grammar, loosest binding first:
//!
//! ```text
//! expr    := term (('+' | '-') term)*
//! term    := unary (('*' | '/' | '%') unary)*
//! unary   := ('+' | '-') unary | power
//! power   := primary (('^' | '**') unary)?        right-associative; -2^2 = -4
//! primary := number | constant | function '(' expr (',' expr)* ')' | '(' expr ')'
//! ```
//!
//! Sums and products are flat lists rather than left-deep trees, so a long `1+1+…`
//! does not make the evaluator recurse; the only recursion left is nesting (brackets,
//! unary signs, exponents, call arguments), which is capped at [`MAX_DEPTH`].

/// Longest expression accepted, in characters.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting accepted (brackets, unary signs, exponents, call arguments).
pub const MAX_DEPTH: usize = 128;

/// A parsed expression node.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A numeric literal.
    Number(f64),
    /// A named constant, already resolved to its value.
    Constant { name: &'static str, value: f64 },
    /// `-x` (unary plus is dropped while parsing).
    Negate { operand: Box<Expr>, column: usize },
    /// `first op₁ x₁ op₂ x₂ …` for one precedence level (`+ -` or `* / %`).
    Chain {
        first: Box<Expr>,
        rest: Vec<(BinaryOp, usize, Expr)>,
    },
    /// `base ^ exponent`.
    Power {
        base: Box<Expr>,
        exponent: Box<Expr>,
        column: usize,
    },
    /// `name(args…)`, arity already checked.
    Call {
        function: Function,
        args: Vec<Expr>,
        column: usize,
    },
}

/// A binary operator of a [`Expr::Chain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> char {
        match self {
            BinaryOp::Add => '+',
            BinaryOp::Subtract => '-',
            BinaryOp::Multiply => '*',
            BinaryOp::Divide => '/',
            BinaryOp::Remainder => '%',
        }
    }
}

/// How many arguments a function takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// Lower-case name.
    pub name: &'static str,
    pub arity: Arity,
}

/// Every function the evaluator knows, by lower-case name.
pub const FUNCTIONS: &[Function] = &[
    f("sqrt", Arity::Exactly(1)),
    f("abs", Arity::Exactly(1)),
    f("sin", Arity::Exactly(1)),
    f("cos", Arity::Exactly(1)),
    f("tan", Arity::Exactly(1)),
    f("asin", Arity::Exactly(1)),
    f("acos", Arity::Exactly(1)),
    f("atan", Arity::Exactly(1)),
    f("atan2", Arity::Exactly(2)),
    f("ln", Arity::Exactly(1)),
    f("log10", Arity::Exactly(1)),
    f("log2", Arity::Exactly(1)),
    f("exp", Arity::Exactly(1)),
    f("floor", Arity::Exactly(1)),
    f("ceil", Arity::Exactly(1)),
    f("round", Arity::Exactly(1)),
    f("min", Arity::AtLeast(1)),
    f("max", Arity::AtLeast(1)),
    f("pow", Arity::Exactly(2)),
    f("hypot", Arity::Exactly(2)),
];

const fn f(name: &'static str, arity: Arity) -> Function {
    Function { name, arity }
}

/// Every constant, by lower-case name.
pub const CONSTANTS: &[(&str, f64)] = &[
    ("pi", std::f64::consts::PI),
    ("e", std::f64::consts::E),
    ("tau", std::f64::consts::TAU),
];

/// A parse or evaluation error, pointing at a 1-based character column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", at_column(.column))]
pub struct CalcError {
    /// What went wrong, without the position.
    pub message: String,
    /// 1-based column (in characters) of the offending token, if any.
    pub column: Option<usize>,
}

impl CalcError {
    pub(crate) fn at(column: usize, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            column: Some(column),
        }
    }
}

fn at_column(column: &Option<usize>) -> String {
    column.map_or_else(String::new, |c| format!(" at column {c}"))
}

/// Parse `text` into an expression tree.
///
/// # Errors
///
/// A [`CalcError`] for empty or over-long input, unknown characters, names or
/// arities, unbalanced brackets, or nesting deeper than [`MAX_DEPTH`].
pub fn parse(text: &str) -> Result<Expr, CalcError> {
    let length = text.chars().count();
    if length > MAX_LEN {
        return Err(CalcError {
            message: format!("expression is {length} characters long; the limit is {MAX_LEN}"),
            column: None,
        });
    }
    let tokens = lex(text)?;
    if matches!(
        tokens.first(),
        Some(Token {
            kind: Kind::End,
            ..
        })
    ) {
        return Err(CalcError {
            message: "expression is empty".to_owned(),
            column: None,
        });
    }
    let mut parser = Parser {
        tokens,
        next: 0,
        depth: 0,
    };
    let expr = parser.expr()?;
    let token = parser.peek();
    match token.kind {
        Kind::End => Ok(expr),
        _ => Err(parser.unexpected()),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Number(f64),
    Ident(String),
    /// One of `+ - * / % ^` (`**` is lexed as `^`).
    Op(char),
    Open,
    Close,
    Comma,
    End,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: Kind,
    /// 1-based column of the first character.
    column: usize,
    /// The text as written, for error messages.
    text: String,
}

fn lex(text: &str) -> Result<Vec<Token>, CalcError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let kind = if c.is_ascii_digit() || c == '.' {
            i = scan_number(&chars, i);
            let literal: String = chars[start..i].iter().collect();
            let value = literal
                .parse::<f64>()
                .map_err(|_| CalcError::at(column, format!("malformed number `{literal}`")))?;
            if !value.is_finite() {
                return Err(CalcError::at(
                    column,
                    format!("number `{literal}` is too large"),
                ));
            }
            Kind::Number(value)
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            Kind::Ident(chars[start..i].iter().collect())
        } else {
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    Kind::Op('^')
                }
                '+' | '-' | '*' | '/' | '%' | '^' => Kind::Op(c),
                '(' => Kind::Open,
                ')' => Kind::Close,
                ',' => Kind::Comma,
                _ => return Err(CalcError::at(column, format!("unexpected character `{c}`"))),
            }
        };
        tokens.push(Token {
            kind,
            column,
            text: chars[start..i].iter().collect(),
        });
    }
    tokens.push(Token {
        kind: Kind::End,
        column: chars.len() + 1,
        text: String::new(),
    });
    Ok(tokens)
}

/// Index just past the number starting at `i`: digits, an optional fraction, and an
/// optional exponent (`e`, optional sign, digits; taken only when digits follow, so
/// `2e` is `2` followed by the constant `e`, which the parser then rejects).
fn scan_number(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    i
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // `lex` always ends the list with `End`, and `advance` never moves past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.next < self.tokens.len() - 1 {
            self.next += 1;
        }
        token
    }

    fn unexpected(&self) -> CalcError {
        let token = self.peek();
        match token.kind {
            Kind::End => CalcError::at(token.column, "unexpected end of expression"),
            _ => CalcError::at(token.column, format!("unexpected `{}`", token.text)),
        }
    }

    /// Enter one nesting level; the caller must call `leave` on success.
    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CalcError::at(
                self.peek().column,
                format!("expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn expr(&mut self) -> Result<Expr, CalcError> {
        self.enter()?;
        let first = self.term()?;
        let mut rest = Vec::new();
        while let Kind::Op(c @ ('+' | '-')) = self.peek().kind {
            let column = self.advance().column;
            let op = if c == '+' {
                BinaryOp::Add
            } else {
                BinaryOp::Subtract
            };
            rest.push((op, column, self.term()?));
        }
        self.leave();
        Ok(chain(first, rest))
    }

    fn term(&mut self) -> Result<Expr, CalcError> {
        let first = self.unary()?;
        let mut rest = Vec::new();
        while let Kind::Op(c @ ('*' | '/' | '%')) = self.peek().kind {
            let column = self.advance().column;
            let op = match c {
                '*' => BinaryOp::Multiply,
                '/' => BinaryOp::Divide,
                _ => BinaryOp::Remainder,
            };
            rest.push((op, column, self.unary()?));
        }
        Ok(chain(first, rest))
    }

    fn unary(&mut self) -> Result<Expr, CalcError> {
        match self.peek().kind {
            Kind::Op(c @ ('+' | '-')) => {
                let column = self.advance().column;
                self.enter()?;
                let operand = self.unary()?;
                self.leave();
                Ok(if c == '-' {
                    Expr::Negate {
                        operand: Box::new(operand),
                        column,
                    }
                } else {
                    operand
                })
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, CalcError> {
        let base = self.primary()?;
        if let Kind::Op('^') = self.peek().kind {
            let column = self.advance().column;
            self.enter()?;
            let exponent = self.unary()?;
            self.leave();
            return Ok(Expr::Power {
                base: Box::new(base),
                exponent: Box::new(exponent),
                column,
            });
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, CalcError> {
        let token = self.peek().clone();
        match token.kind {
            Kind::Number(value) => {
                self.advance();
                Ok(Expr::Number(value))
            }
            Kind::Open => {
                self.advance();
                let inner = self.expr()?;
                self.expect_close(token.column)?;
                Ok(inner)
            }
            Kind::Ident(name) => {
                self.advance();
                let lower = name.to_ascii_lowercase();
                if matches!(self.peek().kind, Kind::Open) {
                    self.call(&name, &lower, token.column)
                } else if let Some(&(name, value)) = CONSTANTS.iter().find(|(n, _)| *n == lower) {
                    Ok(Expr::Constant { name, value })
                } else if FUNCTIONS.iter().any(|f| f.name == lower) {
                    Err(CalcError::at(
                        token.column,
                        format!("function `{name}` needs arguments in brackets"),
                    ))
                } else {
                    Err(CalcError::at(
                        token.column,
                        format!("unknown name `{name}` (constants: pi, e, tau)"),
                    ))
                }
            }
            _ => Err(self.unexpected()),
        }
    }

    fn call(&mut self, written: &str, lower: &str, column: usize) -> Result<Expr, CalcError> {
        let Some(&function) = FUNCTIONS.iter().find(|f| f.name == lower) else {
            let known: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
            return Err(CalcError::at(
                column,
                format!("unknown function `{written}` (known: {})", known.join(", ")),
            ));
        };
        let open = self.advance().column;
        let mut args = Vec::new();
        if !matches!(self.peek().kind, Kind::Close) {
            loop {
                args.push(self.expr()?);
                if matches!(self.peek().kind, Kind::Comma) {
                    self.advance();
                } else {
                    break;
                }
            }
        }
        self.expect_close(open)?;
        let fits = match function.arity {
            Arity::Exactly(n) => args.len() == n,
            Arity::AtLeast(n) => args.len() >= n,
        };
        if !fits {
            let wanted = match function.arity {
                Arity::Exactly(1) => "exactly 1 argument".to_owned(),
                Arity::Exactly(n) => format!("exactly {n} arguments"),
                Arity::AtLeast(1) => "at least 1 argument".to_owned(),
                Arity::AtLeast(n) => format!("at least {n} arguments"),
            };
            return Err(CalcError::at(
                column,
                format!("`{}` takes {wanted}, got {}", function.name, args.len()),
            ));
        }
        Ok(Expr::Call {
            function,
            args,
            column,
        })
    }

    fn expect_close(&mut self, open_column: usize) -> Result<(), CalcError> {
        match self.peek().kind {
            Kind::Close => {
                self.advance();
                Ok(())
            }
            Kind::End => Err(CalcError::at(open_column, "unclosed `(`")),
            _ => Err(self.unexpected()),
        }
    }
}

fn chain(first: Expr, rest: Vec<(BinaryOp, usize, Expr)>) -> Expr {
    if rest.is_empty() {
        first
    } else {
        Expr::Chain {
            first: Box::new(first),
            rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_err(text: &str, expected: &str) {
        let err = parse(text).expect_err("parse should fail");
        assert_eq!(err.to_string(), expected, "input: {text}");
    }

    #[test]
    fn errors_point_at_columns() {
        check_err("(1 + 2))", "unexpected `)` at column 8");
        check_err("1 + (2 * 3", "unclosed `(` at column 5");
        check_err("1 +", "unexpected end of expression at column 4");
        check_err("2 $ 3", "unexpected character `$` at column 3");
        check_err("1 2", "unexpected `2` at column 3");
        check_err(
            "foo(1)",
            "unknown function `foo` (known: sqrt, abs, sin, cos, tan, asin, acos, atan, atan2, ln, log10, log2, exp, floor, ceil, round, min, max, pow, hypot) at column 1",
        );
        check_err(
            "x + 1",
            "unknown name `x` (constants: pi, e, tau) at column 1",
        );
        check_err(
            "sqrt",
            "function `sqrt` needs arguments in brackets at column 1",
        );
        check_err(
            "pow(1)",
            "`pow` takes exactly 2 arguments, got 1 at column 1",
        );
        check_err(
            "max()",
            "`max` takes at least 1 argument, got 0 at column 1",
        );
        check_err("1..2", "unexpected `.2` at column 3");
        check_err(".", "malformed number `.` at column 1");
        check_err("2e", "unexpected `e` at column 2");
        check_err("", "expression is empty");
        check_err("   ", "expression is empty");
        check_err("1,2", "unexpected `,` at column 2");
    }

    #[test]
    fn lengths_and_depth_are_capped() {
        let long = "1+".repeat(2048) + "1";
        assert!(parse(&long).unwrap_err().message.contains("limit is 4096"));
        let deep = "(".repeat(200) + "1" + &")".repeat(200);
        let err = parse(&deep).unwrap_err();
        assert!(err.message.contains("deeper than 128"), "{err}");
        let ok = "(".repeat(100) + "1" + &")".repeat(100);
        assert!(parse(&ok).is_ok());
        let minus = "-".repeat(1000) + "1";
        assert!(parse(&minus).unwrap_err().message.contains("deeper"));
        let tower = "2^".repeat(1000) + "2";
        assert!(parse(&tower).unwrap_err().message.contains("deeper"));
    }

    #[test]
    fn power_operator_spellings() {
        assert_eq!(parse("2**3").unwrap(), parse("2^3").unwrap());
    }
}

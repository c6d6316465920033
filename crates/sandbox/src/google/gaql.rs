//! Just enough of the Google Ads Query Language for account discovery.
//!
//! `SELECT <fields> FROM customer_client|customer [WHERE <cond> [AND <cond>]...]
//! [ORDER BY <field> [ASC|DESC], ...] [LIMIT <n>]`, where a condition is
//! `<field> <op> <value>` (`=`, `!=`, `<`, `<=`, `>`, `>=`) or `<field> [NOT] IN (<values>)` and
//! a value is a number, a quoted string, `TRUE`/`FALSE` or an enum constant. Fields are the
//! resource's own (`customer_client.id`, `.descriptive_name`, `.manager`, `.level`, `.status`,
//! `.currency_code`, `.test_account`, `.time_zone`, `.hidden`, `.client_customer`,
//! `.resource_name`; `customer.id`, `.descriptive_name`, `.manager`, `.status`,
//! `.currency_code`, `.test_account`, `.time_zone`, `.resource_name`). Anything else is refused
//! with the `queryError` Google would give (`UNRECOGNIZED_FIELD`,
//! `PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE`, `BAD_OPERATOR`, ...).

use std::cmp::Ordering;

/// A typed value of a row or a literal of a query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Int(i64),
    Str(String),
    Bool(bool),
    Enum(String),
}

impl Val {
    fn compare(&self, other: &Literal) -> Option<Ordering> {
        match (self, other) {
            (Val::Int(a), Literal::Number(b)) => Some(a.cmp(b)),
            (Val::Str(a), Literal::Text(b)) => Some(a.as_str().cmp(b.as_str())),
            (Val::Bool(a), Literal::Word(w)) => match w.to_ascii_uppercase().as_str() {
                "TRUE" => Some(a.cmp(&true)),
                "FALSE" => Some(a.cmp(&false)),
                _ => None,
            },
            (Val::Enum(a), Literal::Word(w) | Literal::Text(w)) => Some(a.as_str().cmp(w.as_str())),
            _ => None,
        }
    }

    fn order(&self, other: &Val) -> Ordering {
        match (self, other) {
            (Val::Int(a), Val::Int(b)) => a.cmp(b),
            (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
            (Val::Str(a) | Val::Enum(a), Val::Str(b) | Val::Enum(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// A literal in a condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Number(i64),
    Text(String),
    /// `TRUE`, `FALSE` or an enum constant.
    Word(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    field: String,
    op: Op,
    values: Vec<Literal>,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub fields: Vec<String>,
    pub resource: String,
    conditions: Vec<Condition>,
    order: Vec<(String, bool)>,
    pub limit: Option<usize>,
}

/// Why a query was refused: a `queryError` code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub code: &'static str,
    pub message: String,
}

fn fail<T>(code: &'static str, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError { code, message: message.into() })
}

/// The fields each resource has here, with whether they hold enum constants.
pub(crate) fn resource_fields(resource: &str) -> Option<&'static [&'static str]> {
    match resource {
        "customer_client" => Some(&[
            "id",
            "descriptive_name",
            "manager",
            "level",
            "status",
            "currency_code",
            "test_account",
            "time_zone",
            "hidden",
            "client_customer",
            "resource_name",
        ]),
        "customer" => Some(&[
            "id",
            "descriptive_name",
            "manager",
            "status",
            "currency_code",
            "test_account",
            "time_zone",
            "resource_name",
        ]),
        _ => None,
    }
}

/// Resources Google has that this sandbox does not serve.
const OTHER_RESOURCES: &[&str] = &[
    "user_list",
    "offline_user_data_job",
    "campaign",
    "ad_group",
    "customer_user_access",
    "customer_manager_link",
    "customer_client_link",
    "change_status",
    "customer_label",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number(i64),
    Text(String),
    Symbol(&'static str),
}

fn tokenize(query: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = query.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            match text.parse() {
                Ok(n) => tokens.push(Token::Number(n)),
                Err(_) => return fail("BAD_NUMBER", format!("Cannot parse number {text}")),
            }
        } else if c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return fail("STRING_NOT_TERMINATED", "Query contains an unterminated string."),
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some(escaped) => text.push(*escaped),
                            None => return fail("BAD_ESCAPE_SEQUENCE", "Query ends inside an escape sequence."),
                        }
                        i += 2;
                    }
                    Some(q) if *q == c => {
                        i += 1;
                        break;
                    }
                    Some('\n') => return fail("PROHIBITED_NEWLINE_IN_STRING", "A string contains a newline."),
                    Some(other) => {
                        text.push(*other);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Text(text));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = match two.as_str() {
                "!=" => Some("!="),
                "<=" => Some("<="),
                ">=" => Some(">="),
                _ => None,
            };
            if let Some(symbol) = symbol {
                tokens.push(Token::Symbol(symbol));
                i += 2;
                continue;
            }
            let symbol = match c {
                ',' => ",",
                '(' => "(",
                ')' => ")",
                '=' => "=",
                '<' => "<",
                '>' => ">",
                _ => return fail("BAD_SYMBOL", format!("Unexpected symbol '{c}' in the query.")),
            };
            tokens.push(Token::Symbol(symbol));
            i += 1;
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.at += 1;
            return true;
        }
        false
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.at += 1;
            return true;
        }
        false
    }

    fn field(&mut self) -> Result<String, QueryError> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            Some(_) => fail("BAD_FIELD_NAME", "Expected a field name."),
            None => fail("UNEXPECTED_END_OF_QUERY", "Query is incomplete and cannot be parsed."),
        }
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        match self.next() {
            Some(Token::Number(n)) => Ok(Literal::Number(n)),
            Some(Token::Text(t)) => Ok(Literal::Text(t)),
            Some(Token::Word(w)) if !w.contains('.') => Ok(Literal::Word(w)),
            Some(_) => fail("BAD_VALUE", "Expected a value."),
            None => fail("UNEXPECTED_END_OF_QUERY", "Query is incomplete and cannot be parsed."),
        }
    }

    fn condition(&mut self) -> Result<Condition, QueryError> {
        let field = self.field()?;
        let op = match self.next() {
            Some(Token::Symbol("=")) => Op::Eq,
            Some(Token::Symbol("!=")) => Op::Ne,
            Some(Token::Symbol("<")) => Op::Lt,
            Some(Token::Symbol("<=")) => Op::Le,
            Some(Token::Symbol(">")) => Op::Gt,
            Some(Token::Symbol(">=")) => Op::Ge,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("IN") => Op::In,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("NOT") && self.keyword("IN") => Op::NotIn,
            Some(_) => return fail("BAD_OPERATOR", format!("Invalid operator after {field}.")),
            None => return fail("UNEXPECTED_END_OF_QUERY", "Query is incomplete and cannot be parsed."),
        };
        let values = if matches!(op, Op::In | Op::NotIn) {
            if !self.symbol("(") {
                return fail("EXPECTED_LIST", format!("The operator on {field} requires a list of values."));
            }
            let mut values = vec![self.literal()?];
            while self.symbol(",") {
                values.push(self.literal()?);
            }
            if !self.symbol(")") {
                return fail("UNEXPECTED_INPUT", "Expected ')' to close the list.");
            }
            values
        } else {
            vec![self.literal()?]
        };
        Ok(Condition { field, op, values })
    }
}

/// Parses a query and checks its fields against the resource.
pub(crate) fn parse(query: &str) -> Result<Query, QueryError> {
    let mut parser = Parser { tokens: tokenize(query)?, at: 0 };
    if !parser.keyword("SELECT") {
        return fail("EXPECTED_SELECT", "SELECT is missing at the beginning of the query.");
    }
    let mut fields = vec![parser.field()?];
    while parser.symbol(",") {
        fields.push(parser.field()?);
    }
    if !parser.keyword("FROM") {
        return fail("EXPECTED_FROM", "Missing FROM clause.");
    }
    let resource = match parser.next() {
        Some(Token::Word(w)) => w,
        _ => return fail("BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", "Expected a resource after FROM."),
    };
    let Some(known) = resource_fields(&resource) else {
        if OTHER_RESOURCES.contains(&resource.as_str()) {
            return fail(
                "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE",
                format!("The sandbox serves account discovery only (customer_client, customer), not {resource}."),
            );
        }
        return fail("BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", format!("Invalid resource type {resource} in FROM clause."));
    };
    let check = |field: &str| -> Result<(), QueryError> {
        match field.split_once('.') {
            Some((r, f)) if r == resource && known.contains(&f) => Ok(()),
            Some((r, _)) if r != resource && resource_fields(r).is_some() => fail(
                "PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE",
                format!("Field {field} comes from a resource incompatible with {resource}."),
            ),
            _ => fail("UNRECOGNIZED_FIELD", format!("Unrecognized field in the query: '{field}'.")),
        }
    };
    for field in &fields {
        check(field)?;
    }
    let mut conditions = Vec::new();
    if parser.keyword("WHERE") {
        loop {
            let condition = parser.condition()?;
            check(&condition.field)?;
            conditions.push(condition);
            if !parser.keyword("AND") {
                break;
            }
        }
    }
    let mut order = Vec::new();
    if parser.keyword("ORDER") {
        if !parser.keyword("BY") {
            return fail("EXPECTED_BY", "Expecting ORDER BY to have BY.");
        }
        loop {
            let field = parser.field()?;
            check(&field)?;
            let descending = if parser.keyword("DESC") {
                true
            } else {
                parser.keyword("ASC");
                false
            };
            order.push((field, descending));
            if !parser.symbol(",") {
                break;
            }
        }
    }
    let mut limit = None;
    if parser.keyword("LIMIT") {
        match parser.next() {
            Some(Token::Number(n)) if n > 0 => limit = usize::try_from(n).ok(),
            Some(Token::Number(_)) => return fail("LIMIT_VALUE_TOO_LOW", "The LIMIT value is too low."),
            _ => return fail("BAD_LIMIT_VALUE", "The LIMIT value is not a number."),
        }
    }
    if parser.keyword("PARAMETERS") {
        return fail("BAD_PARAMETER_NAME", "The sandbox supports no query PARAMETERS.");
    }
    if parser.peek().is_some() {
        return fail("UNEXPECTED_INPUT", "Query has an unexpected extra part.");
    }
    Ok(Query { fields, resource, conditions, order, limit })
}

/// A row: field name (with the resource prefix) -> value.
pub(crate) type Row = Vec<(String, Val)>;

fn value<'a>(row: &'a Row, field: &str) -> Option<&'a Val> {
    row.iter().find(|(name, _)| name == field).map(|(_, v)| v)
}

impl Query {
    /// Whether a row passes the WHERE clause; a value of the wrong type is a `BAD_VALUE`.
    pub fn matches(&self, row: &Row) -> Result<bool, QueryError> {
        for condition in &self.conditions {
            let Some(actual) = value(row, &condition.field) else {
                return Ok(false);
            };
            let mut orderings = Vec::new();
            for literal in &condition.values {
                match actual.compare(literal) {
                    Some(ordering) => orderings.push(ordering),
                    None => {
                        let code = if matches!(actual, Val::Enum(_)) { "BAD_ENUM_CONSTANT" } else { "BAD_VALUE" };
                        return fail(code, format!("Invalid value for {}.", condition.field));
                    }
                }
            }
            let first = orderings.first().copied().unwrap_or(Ordering::Equal);
            let pass = match condition.op {
                Op::Eq => first == Ordering::Equal,
                Op::Ne => first != Ordering::Equal,
                Op::Lt => first == Ordering::Less,
                Op::Le => first != Ordering::Greater,
                Op::Gt => first == Ordering::Greater,
                Op::Ge => first != Ordering::Less,
                Op::In => orderings.contains(&Ordering::Equal),
                Op::NotIn => !orderings.contains(&Ordering::Equal),
            };
            if !pass {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sorts rows by the ORDER BY clause (stable; no clause keeps the given order).
    pub fn sort(&self, rows: &mut [Row]) {
        rows.sort_by(|a, b| {
            for (field, descending) in &self.order {
                let ordering = match (value(a, field), value(b, field)) {
                    (Some(x), Some(y)) => x.order(y),
                    _ => Ordering::Equal,
                };
                let ordering = if *descending { ordering.reverse() } else { ordering };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            Ordering::Equal
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(level: i64, manager: bool, status: &str) -> Row {
        vec![
            ("customer_client.level".to_owned(), Val::Int(level)),
            ("customer_client.manager".to_owned(), Val::Bool(manager)),
            ("customer_client.status".to_owned(), Val::Enum(status.to_owned())),
            ("customer_client.descriptive_name".to_owned(), Val::Str(format!("n{level}"))),
        ]
    }

    #[test]
    fn discovery_queries_parse_and_filter() {
        let query = parse(
            "SELECT customer_client.id, customer_client.descriptive_name, customer_client.manager, \
             customer_client.level FROM customer_client WHERE customer_client.level <= 1 AND \
             customer_client.status IN ('ENABLED', SUSPENDED) AND customer_client.manager = FALSE",
        );
        let query = query.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(query.resource, "customer_client");
        assert_eq!(query.fields.len(), 4);
        assert_eq!(query.matches(&row(1, false, "ENABLED")), Ok(true));
        assert_eq!(query.matches(&row(2, false, "ENABLED")), Ok(false));
        assert_eq!(query.matches(&row(1, true, "ENABLED")), Ok(false));
        assert_eq!(query.matches(&row(0, false, "CLOSED")), Ok(false));
    }

    #[test]
    fn order_and_limit_apply() {
        let query =
            parse("select customer_client.level from customer_client order by customer_client.level desc limit 2");
        let query = query.unwrap_or_else(|e| panic!("{e:?}"));
        let mut rows = vec![row(0, true, "ENABLED"), row(2, false, "ENABLED"), row(1, false, "ENABLED")];
        query.sort(&mut rows);
        assert_eq!(rows[0][0].1, Val::Int(2));
        assert_eq!(query.limit, Some(2));
    }

    #[test]
    fn other_shapes_are_refused_with_google_codes() {
        let code = |q: &str| parse(q).err().map(|e| e.code);
        assert_eq!(code("customer_client.id FROM customer_client"), Some("EXPECTED_SELECT"));
        assert_eq!(code("SELECT customer_client.id"), Some("EXPECTED_FROM"));
        assert_eq!(code("SELECT user_list.id FROM user_list"), Some("PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE"));
        assert_eq!(code("SELECT x.id FROM nowhere"), Some("BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"));
        assert_eq!(code("SELECT customer_client.nope FROM customer_client"), Some("UNRECOGNIZED_FIELD"));
        assert_eq!(code("SELECT customer.id FROM customer_client"), Some("PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE"));
        assert_eq!(
            code("SELECT customer_client.id FROM customer_client WHERE customer_client.level LIKE 1"),
            Some("BAD_OPERATOR")
        );
        assert_eq!(
            code("SELECT customer_client.id FROM customer_client WHERE customer_client.id = 'x"),
            Some("STRING_NOT_TERMINATED")
        );
        assert_eq!(code("SELECT customer_client.id FROM customer_client LIMIT 0"), Some("LIMIT_VALUE_TOO_LOW"));
        assert_eq!(code("SELECT customer_client.id FROM customer_client extra"), Some("UNEXPECTED_INPUT"));
        let bad_value = parse("SELECT customer_client.id FROM customer_client WHERE customer_client.level = 'x'");
        assert!(bad_value.is_ok_and(|q| q.matches(&row(1, false, "ENABLED")).is_err()));
    }
}

//! Decides whether an answer body is a valid getToken answer. Owns the JSON Schema
//! (compiled once, shipped in `schemas/`, replaceable with `--schema`) and turns its
//! errors into [`Violation`]s: a JSON Pointer plus a short reason.
//!
//! It must never echo a value from the body: a reason says what was expected, not what
//! was found, so a token in a wrong place cannot reach a log line. Array indices in
//! paths are replaced by `*`, so the set of paths is bounded by the schema and safe as
//! a metric label.

use std::borrow::Cow;
use std::path::Path;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde::Serialize;
use serde_json::Value;

/// The token answer schema as shipped; `nehr-probe schema` prints it.
pub const TOKEN_SCHEMA: &str = include_str!("../../schemas/get-token.schema.json");
/// The API document's example of a valid answer, verbatim: the fixture tests and
/// benches validate, and what the schema must accept.
pub const SPEC_EXAMPLE: &str = include_str!("../../schemas/get-token.example.json");
/// What 401 and 500 answers are expected to carry.
pub const ERROR_SCHEMA: &str = include_str!("../../schemas/error.schema.json");

/// How many violations one answer may report: a hostile body can break every rule.
const MAX_VIOLATIONS: usize = 16;

/// One broken rule: where (a JSON Pointer, `""` for the whole body) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl Violation {
    pub fn root(message: impl Into<String>) -> Self {
        Violation { path: String::new(), message: message.into() }
    }
}

/// What a valid answer says about its token, without the token itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenFacts {
    /// As the answer spelled it; the usual `bearer` is not copied.
    pub token_type: Option<Cow<'static, str>>,
    pub expires_in: Option<i64>,
    pub scope: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read schema file {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("schema file {path} is not JSON: {cause}")]
    Json { path: String, cause: serde_json::Error },
    #[error("schema file {path} is not a valid JSON Schema: {message}")]
    Invalid { path: String, message: String },
}

/// The compiled schemas. Build once, share by reference across every probe.
pub struct Validator {
    /// The built-in schema is also checked by [`fast_check`], which answers for the
    /// common valid case without building a JSON tree.
    builtin: bool,
    token: jsonschema::Validator,
    error: jsonschema::Validator,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").finish_non_exhaustive()
    }
}

impl Validator {
    /// The documented schema, as shipped.
    pub fn builtin() -> Self {
        let mut v = Self::compile(TOKEN_SCHEMA, "built-in schema").expect("the shipped schema compiles");
        v.builtin = true;
        v
    }

    /// A user's replacement for the token schema (`--schema FILE`).
    pub fn from_file(path: &Path) -> Result<Self, SchemaError> {
        let shown = path.display().to_string();
        let text = crate::util::units::read_input_file(path)
            .map_err(|cause| SchemaError::Read { path: shown.clone(), cause })?;
        Self::compile(&text, &shown)
    }

    fn compile(text: &str, shown: &str) -> Result<Self, SchemaError> {
        let json: Value =
            serde_json::from_str(text).map_err(|cause| SchemaError::Json { path: shown.to_string(), cause })?;
        let token = jsonschema::validator_for(&json)
            .map_err(|e| SchemaError::Invalid { path: shown.to_string(), message: e.to_string() })?;
        let error_json: Value = serde_json::from_str(ERROR_SCHEMA).expect("error schema is JSON");
        let error = jsonschema::validator_for(&error_json).expect("error schema compiles");
        Ok(Validator { builtin: false, token, error })
    }

    /// Checks a 200 answer. `Ok` carries the token facts; `Err` at least one violation.
    pub fn check_token(&self, body: &[u8]) -> Result<TokenFacts, Vec<Violation>> {
        self.check_token_with(body).map(|(facts, _)| facts)
    }

    /// As [`Validator::check_token`], with the access token itself when the answer has
    /// one as a non-empty string (a replacing `--schema` may not ask for it): for the
    /// caller to hand on, never to keep or show.
    pub fn check_token_with<'b>(&self, body: &'b [u8]) -> Result<(TokenFacts, Option<Cow<'b, str>>), Vec<Violation>> {
        if self.builtin
            && let Some(found) = fast_check(body)
        {
            return Ok(found);
        }
        let value = parse_object(body)?;
        if !self.token.is_valid(&value) {
            return Err(collect(&self.token, &value));
        }
        let token = value
            .get("result")
            .and_then(|r| r.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(|t| Cow::Owned(t.to_owned()));
        Ok((facts(&value), token))
    }

    /// Checks a 401/500 answer against `{code: integer, message: string}`. Violations
    /// here are notes: they never change the outcome.
    pub fn check_error(&self, body: &[u8]) -> Vec<Violation> {
        match parse_object(body) {
            Err(v) => v,
            Ok(value) if self.error.is_valid(&value) => Vec::new(),
            Ok(value) => collect(&self.error, &value),
        }
    }
}

fn parse_object(body: &[u8]) -> Result<Value, Vec<Violation>> {
    if body.is_empty() {
        return Err(vec![Violation::root("empty body, expected a JSON object")]);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let why = match e.classify() {
            serde_json::error::Category::Eof => "truncated JSON",
            _ if std::str::from_utf8(body).is_err() => "not UTF-8 JSON",
            _ if e.to_string().contains("recursion limit") => "JSON nested too deep",
            _ => "not JSON",
        };
        vec![Violation::root(format!("{why} (line {}, column {})", e.line(), e.column()))]
    })?;
    if !value.is_object() {
        return Err(vec![Violation::root(format!("expected a JSON object, got {}", type_name(&value)))]);
    }
    Ok(value)
}

fn collect(validator: &jsonschema::Validator, value: &Value) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    for error in validator.iter_errors(value).take(MAX_VIOLATIONS) {
        let v = Violation {
            path: bounded_path(error.instance_path().as_str(), error.kind()),
            message: reason(error.kind()),
        };
        // One violation per field: `"0"` for `code` breaks both `type` and `const`.
        if !out.iter().any(|o| o.path == v.path) {
            out.push(v);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    if out.is_empty() {
        out.push(Violation::root("does not match the schema"));
    }
    out
}

/// The instance path with array indices as `*`; for a missing field, the field itself
/// (`/result/access_token` rather than `/result`), which is what a reader looks for.
fn bounded_path(instance: &str, kind: &ValidationErrorKind) -> String {
    let mut path = String::with_capacity(instance.len() + 16);
    for seg in instance.split('/').skip(1) {
        path.push('/');
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            path.push('*');
        } else {
            path.push_str(seg);
        }
    }
    if let ValidationErrorKind::Required { property: Value::String(name) } = kind {
        path.push('/');
        path.push_str(&name.replace('~', "~0").replace('/', "~1"));
    }
    path
}

/// A reason that names the rule, never the value found.
fn reason(kind: &ValidationErrorKind) -> String {
    use ValidationErrorKind as K;
    match kind {
        K::Required { .. } => "required field is missing".into(),
        K::Type { kind } => match kind {
            TypeKind::Single(t) => format!("expected {t}"),
            TypeKind::Multiple(set) => {
                let names: Vec<String> = set.iter().map(|t| t.to_string()).collect();
                format!("expected {}", names.join(" or "))
            }
        },
        K::Constant { expected_value } => format!("must equal {expected_value}"),
        K::Enum { options } => format!("must be one of {options}"),
        K::ExclusiveMinimum { limit } => format!("must be > {limit}"),
        K::Minimum { limit } => format!("must be >= {limit}"),
        K::ExclusiveMaximum { limit } => format!("must be < {limit}"),
        K::Maximum { limit } => format!("must be <= {limit}"),
        K::MinLength { limit: 1 } => "must not be empty".into(),
        K::MinLength { limit } => format!("must be at least {limit} characters"),
        K::MaxLength { limit } => format!("must be at most {limit} characters"),
        K::Pattern { pattern } if pattern.contains("[Bb][Ee]") => "must be \"bearer\"".into(),
        K::Pattern { pattern } => format!("must match {pattern}"),
        K::MinItems { limit } => format!("must have at least {limit} items"),
        K::MaxItems { limit } => format!("must have at most {limit} items"),
        K::AdditionalProperties { .. } => "has fields the schema does not allow".into(),
        K::FalseSchema => "is not allowed".into(),
        _ => "does not match the schema".into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The built-in schema's valid case by [`super::fast`], which may only say "valid" when
/// the schema would; `None` sends the answer to the schema.
fn fast_check(body: &[u8]) -> Option<(TokenFacts, Option<Cow<'_, str>>)> {
    let t = super::fast::token_answer(std::str::from_utf8(body).ok()?)?;
    let facts =
        TokenFacts { token_type: Some(token_type(t.token_type)), expires_in: Some(t.expires_in), scope: Some(t.scope) };
    Some((facts, Some(Cow::Borrowed(t.access_token))))
}

/// A valid answer's `token_type`, copied only when it is not spelled `bearer`.
fn token_type(sent: &str) -> Cow<'static, str> {
    if sent == "bearer" { Cow::Borrowed("bearer") } else { Cow::Owned(sent.to_owned()) }
}

fn facts(value: &Value) -> TokenFacts {
    let result = value.get("result");
    let field = |name: &str| result.and_then(|r| r.get(name));
    TokenFacts {
        token_type: field("token_type").and_then(Value::as_str).map(token_type),
        // JSON Schema counts 86399.0 and 1e5 as integers, so they pass: keep their value
        // (saturating) rather than lose the lifetime of a valid token.
        expires_in: field("expires_in").and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))),
        scope: field("scope")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_answer() -> Value {
        serde_json::from_str(SPEC_EXAMPLE).unwrap()
    }

    fn check(v: &Value) -> Result<TokenFacts, Vec<Violation>> {
        Validator::builtin().check_token(&serde_json::to_vec(v).unwrap())
    }

    fn broken(edit: impl FnOnce(&mut Value)) -> Vec<Violation> {
        let mut v = spec_answer();
        edit(&mut v);
        check(&v).expect_err("should be invalid")
    }

    fn paths(vs: &[Violation]) -> Vec<&str> {
        vs.iter().map(|v| v.path.as_str()).collect()
    }

    #[test]
    fn spec_example_is_valid_and_yields_facts() {
        let facts = check(&spec_answer()).unwrap();
        assert_eq!(facts.token_type.as_deref(), Some("bearer"));
        assert_eq!(facts.expires_in, Some(86399));
        assert_eq!(facts.scope.unwrap(), vec!["", "read", "write"]);
    }

    #[test]
    fn extra_fields_and_bearer_in_any_case_are_fine() {
        let mut v = spec_answer();
        v["newTopLevel"] = json!({"x": 1});
        v["result"]["newField"] = json!([1, 2]);
        v["result"]["token_type"] = json!("Bearer");
        assert!(check(&v).is_ok());
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let mut v = spec_answer();
        let r = v["result"].as_object_mut().unwrap();
        for k in ["firstLogin", "loggedInUser", "userDetails", "persCode", "userIntitutes", "civilId", "userMobile"] {
            r.remove(k);
        }
        assert!(check(&v).is_ok());
    }

    #[test]
    fn each_documented_rule_is_enforced() {
        assert_eq!(
            paths(&broken(|v| {
                v["result"].as_object_mut().unwrap().remove("access_token");
            })),
            ["/result/access_token"]
        );
        assert_eq!(paths(&broken(|v| v["result"]["access_token"] = json!(""))), ["/result/access_token"]);
        assert_eq!(paths(&broken(|v| v["result"]["refresh_token"] = json!(""))), ["/result/refresh_token"]);
        assert_eq!(paths(&broken(|v| v["result"]["expires_in"] = json!(0))), ["/result/expires_in"]);
        assert_eq!(paths(&broken(|v| v["result"]["expires_in"] = json!(-5))), ["/result/expires_in"]);
        assert_eq!(paths(&broken(|v| v["result"]["expires_in"] = json!("86399"))), ["/result/expires_in"]);
        assert_eq!(paths(&broken(|v| v["result"]["expires_in"] = json!(1.5))), ["/result/expires_in"]);
        assert_eq!(paths(&broken(|v| v["result"]["token_type"] = json!("mac"))), ["/result/token_type"]);
        assert_eq!(paths(&broken(|v| v["code"] = json!(1))), ["/code"]);
        assert_eq!(paths(&broken(|v| v["code"] = json!("0"))), ["/code"]);
        assert_eq!(paths(&broken(|v| v["version"] = json!(2))), ["/version"]);
        assert_eq!(paths(&broken(|v| v["message"] = json!(null))), ["/message"]);
        assert_eq!(paths(&broken(|v| v["result"] = json!(null))), ["/result"]);
        assert_eq!(paths(&broken(|v| v["result"]["scope"] = json!("read"))), ["/result/scope"]);
        assert_eq!(paths(&broken(|v| v["result"]["scope"] = json!(["read", 7]))), ["/result/scope/*"]);
        assert_eq!(paths(&broken(|v| v["result"]["persCode"] = json!(90008))), ["/result/persCode"]);
        assert_eq!(paths(&broken(|v| v["result"]["userIntitutes"] = json!("x"))), ["/result/userIntitutes"]);
        assert_eq!(paths(&broken(|v| v["result"]["userDetails"] = json!(3))), ["/result/userDetails"]);
    }

    #[test]
    fn reasons_never_echo_values() {
        let vs = broken(|v| v["result"]["access_token"] = json!(12345678));
        assert_eq!(vs[0].message, "expected string");
        let vs = broken(|v| v["result"]["token_type"] = json!("secret-looking-value"));
        assert!(!vs[0].message.contains("secret-looking-value"), "{vs:?}");
        assert_eq!(broken(|v| v["result"]["expires_in"] = json!(0))[0].message, "must be > 0");
    }

    #[test]
    fn not_an_object_is_named() {
        let v = Validator::builtin();
        for (body, want) in [
            (&b""[..], "empty body"),
            (b"not json", "not JSON"),
            (b"[1,2]", "an array"),
            (b"{\"version\":", "truncated JSON"),
            (b"\xff\xfe{}", "not UTF-8"),
        ] {
            let vs = v.check_token(body).unwrap_err();
            assert_eq!(vs[0].path, "");
            assert!(vs[0].message.contains(want), "{body:?}: {vs:?}");
        }
        let deep = "[".repeat(100_000);
        let vs = v.check_token(deep.as_bytes()).unwrap_err();
        assert!(vs[0].message.contains("nested too deep"), "{vs:?}");
    }

    #[test]
    fn error_bodies_are_notes() {
        let v = Validator::builtin();
        assert!(v.check_error(br#"{"code":401,"message":"Unauthorized"}"#).is_empty());
        assert_eq!(v.check_error(b"<html>nope</html>")[0].path, "");
        assert_eq!(paths(&v.check_error(br#"{"code":"401"}"#)), ["/code", "/message"]);
    }

    #[test]
    fn replacement_schema_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(&p, r#"{"type":"object","required":["token"]}"#).unwrap();
        let v = Validator::from_file(&p).unwrap();
        assert!(v.check_token(br#"{"token":"x"}"#).is_ok());
        assert_eq!(paths(&v.check_token(b"{}").unwrap_err()), ["/token"]);
        std::fs::write(&p, "{").unwrap();
        assert!(Validator::from_file(&p).unwrap_err().to_string().contains("is not JSON"));
        std::fs::write(&p, r#"{"type": 12}"#).unwrap();
        assert!(Validator::from_file(&p).unwrap_err().to_string().contains("not a valid JSON Schema"));
        assert!(Validator::from_file(&dir.path().join("nope")).is_err());
    }

    /// The fast path may only accept what the schema accepts, and must accept the
    /// common answers (or it is no faster).
    #[test]
    fn fast_path_agrees_with_the_schema() {
        let schema_only = schema_only();
        let builtin = Validator::builtin();
        let mut cases: Vec<Value> = vec![spec_answer()];
        let edits: Vec<fn(&mut Value)> = vec![
            |v| v["result"]["token_type"] = json!("BEARER"),
            |v| v["result"]["token_type"] = json!("bearer "),
            |v| v["result"]["token_type"] = json!("bearer\n"),
            |v| v["code"] = json!(0.0),
            |v| v["code"] = json!(-0),
            |v| v["code"] = json!(1),
            |v| v["result"]["expires_in"] = json!(86399.0),
            |v| v["result"]["expires_in"] = json!(0),
            |v| v["result"]["expires_in"] = json!(u64::MAX),
            |v| v["result"]["scope"] = json!([]),
            |v| v["result"]["scope"] = json!({"a": "b"}),
            |v| v["result"]["scope"] = json!(["a\"b"]),
            |v| v["result"]["access_token"] = json!("with \\ escape"),
            |v| v["result"]["access_token"] = json!(""),
            |v| v["result"]["firstLogin"] = json!(true),
            |v| v["result"]["firstLogin"] = json!("yes"),
            |v| v["result"]["loggedInUser"] = json!("someone"),
            |v| v["result"]["loggedInUser"] = json!(5),
            |v| v["result"]["userDetails"] = json!({"x": 1}),
            |v| v["result"]["userDetails"] = json!([]),
            |v| v["result"]["persCode"] = json!(null),
            |v| v["result"]["persCode"] = json!(1),
            |v| v["result"]["userIntitutes"] = json!(null),
            |v| v["result"]["userIntitutes"] = json!({}),
            |v| v["result"]["civilId"] = json!("123"),
            |v| v["result"]["civilId"] = json!(123),
            |v| v["result"]["userMobile"] = json!(false),
            |v| v["result"]["extra"] = json!({"deep": [1, 2, 3]}),
            |v| v["result"] = json!(["t", "bearer", "r", 1, []]),
            |v| v["result"] = json!(null),
            |v| v["version"] = json!(null),
            |v| {
                v.as_object_mut().unwrap().remove("message");
            },
            |v| {
                v["result"].as_object_mut().unwrap().remove("civilId");
            },
        ];
        for edit in &edits {
            let mut v = spec_answer();
            edit(&mut v);
            cases.push(v);
        }
        let mut bodies: Vec<Vec<u8>> = cases.iter().map(|v| serde_json::to_vec(v).unwrap()).collect();
        bodies.push(br#"["v2",0,"m",{}]"#.to_vec());
        bodies.push(b"  {\"version\":\"v2\",\"code\":0,\"code\":0}".to_vec());
        let spec = serde_json::to_vec(&spec_answer()).unwrap();
        let dup = String::from_utf8(spec.clone()).unwrap().replacen("\"code\":0", "\"code\":1,\"code\":0", 1);
        bodies.push(dup.into_bytes());
        for body in &bodies {
            let slow = schema_only.check_token_with(body);
            let fast = fast_check(body);
            if let Some(f) = &fast {
                assert_eq!(
                    slow.as_ref().ok(),
                    Some(f),
                    "fast path accepted what the schema rejects: {}",
                    String::from_utf8_lossy(body)
                );
            }
            assert_eq!(builtin.check_token_with(body), slow, "{}", String::from_utf8_lossy(body));
        }
        assert!(fast_check(&spec).is_some(), "the spec's answer takes the fast path");
    }

    /// Every body one byte away from the spec's answer (each byte replaced by a
    /// character that matters to JSON, deleted, or doubled): the fast path says "valid"
    /// only with the schema, and with the same facts.
    #[test]
    fn fast_path_agrees_with_the_schema_one_byte_off() {
        let schema_only = schema_only();
        let spec = serde_json::to_vec(&spec_answer()).unwrap();
        let mut bodies = Vec::new();
        for i in 0..spec.len() {
            for c in b"{}[]\",:\\ \t0-1.eEx\x01\x7f\xc3" {
                let mut b = spec.clone();
                b[i] = *c;
                bodies.push(b);
            }
            let mut cut = spec.clone();
            cut.remove(i);
            bodies.push(cut);
            let mut twice = spec.clone();
            twice.insert(i, spec[i]);
            bodies.push(twice);
        }
        let mut fast_said_valid = 0;
        for body in &bodies {
            if let Some(f) = fast_check(body) {
                fast_said_valid += 1;
                assert_eq!(schema_only.check_token_with(body).ok(), Some(f), "{}", String::from_utf8_lossy(body));
            }
        }
        assert!(fast_said_valid > 100, "the fast path should still take most harmless edits");
    }

    /// The built-in schema read from a file, so without the fast path. The file is in a
    /// directory of the caller's own: tests running at once never share it.
    fn schema_only() -> Validator {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("get-token.schema.json");
        std::fs::write(&p, TOKEN_SCHEMA).unwrap();
        Validator::from_file(&p).unwrap()
    }
}

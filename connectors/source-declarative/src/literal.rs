//! Python's `ast.literal_eval` over interpolated text, as the CDK applies it to every rendered
//! template: `"5"` becomes the number 5, `"True"` true, `"[1, 2]"` a list, and text that is not a
//! Python literal (`"2024-01-01"`, `"007"`, `"abc"`) stays text.

use serde_json::{Map, Number, Value};

/// The Python literal `text` is, or `None` when it is not one (the CDK then keeps the text).
pub fn eval(text: &str) -> Option<Value> {
    let mut p = Parser {
        s: text.trim_start_matches([' ', '\t']).as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

/// Literals nested deeper than this (brackets, signs) stay text, as Python's parser gives up on
/// them too: the parser recurses, and response data must not choose the stack depth.
pub const MAX_DEPTH: usize = 100;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let v = self.value_at_depth();
        self.depth -= 1;
        v
    }

    fn value_at_depth(&mut self) -> Option<Value> {
        self.ws();
        match self.peek()? {
            b'[' => {
                self.i += 1;
                self.items(b']').map(Value::Array)
            }
            b'(' => {
                self.i += 1;
                self.ws();
                if self.eat(b')') {
                    return Some(Value::Array(vec![]));
                }
                let first = self.value()?;
                if self.eat(b')') {
                    // `(x)` is x; `(x,)` is a tuple.
                    return Some(first);
                }
                if !self.eat(b',') {
                    return None;
                }
                let mut rest = self.items(b')')?;
                rest.insert(0, first);
                Some(Value::Array(rest))
            }
            b'{' => {
                self.i += 1;
                self.dict()
            }
            b'\'' | b'"' => {
                let mut out = self.string()?;
                // Adjacent literals join: `'a' 'b'` is `'ab'`.
                loop {
                    let save = self.i;
                    self.ws();
                    match self.peek() {
                        Some(b'\'' | b'"') => out.push_str(&self.string()?),
                        _ => {
                            self.i = save;
                            break;
                        }
                    }
                }
                Some(Value::String(out))
            }
            b'-' | b'+' => {
                let neg = self.peek() == Some(b'-');
                self.i += 1;
                let v = self.value()?;
                let n = v.as_number()?.clone();
                Some(Value::Number(if neg { negate(&n)? } else { n }))
            }
            b'0'..=b'9' | b'.' => self.number(),
            _ => {
                for (word, v) in [
                    ("True", Value::Bool(true)),
                    ("False", Value::Bool(false)),
                    ("None", Value::Null),
                ] {
                    if self.s[self.i..].starts_with(word.as_bytes()) {
                        let end = self.i + word.len();
                        let next = self.s.get(end).copied();
                        if next.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == b'_')) {
                            self.i = end;
                            return Some(v);
                        }
                    }
                }
                None
            }
        }
    }

    fn items(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                return Some(out);
            }
            out.push(self.value()?);
            if self.eat(close) {
                return Some(out);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn dict(&mut self) -> Option<Value> {
        let mut out = Map::new();
        loop {
            if self.eat(b'}') {
                return Some(Value::Object(out));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if b { "True" } else { "False" }.to_string(),
                Value::Null => "None".to_string(),
                // Lists are not hashable: literal_eval fails.
                _ => return None,
            };
            if !self.eat(b':') {
                // A set: not something JSON can hold.
                return None;
            }
            let v = self.value()?;
            out.insert(key, v);
            if self.eat(b'}') {
                return Some(Value::Object(out));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let q = self.peek()?;
        let triple = self.s[self.i..].starts_with(&[q, q, q]);
        self.i += if triple { 3 } else { 1 };
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            if triple {
                if self.s[self.i..].starts_with(&[q, q, q]) {
                    self.i += 3;
                    break;
                }
            } else if c == q {
                self.i += 1;
                break;
            } else if c == b'\n' {
                return None;
            }
            self.i += 1;
            if c == b'\\' {
                let e = self.peek()?;
                self.i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'0' => out.push(0),
                    b'\\' | b'\'' | b'"' => out.push(e),
                    b'\n' => {}
                    b'x' | b'u' | b'U' | b'N' => return None,
                    other => {
                        out.push(b'\\');
                        out.push(other);
                    }
                }
            } else {
                out.push(c);
            }
        }
        String::from_utf8(out).ok()
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        let s = self.s;
        // Hex, octal and binary integers.
        if s[start..].len() > 1
            && s[start] == b'0'
            && matches!(s[start + 1] | 0x20, b'x' | b'o' | b'b')
        {
            let radix = match s[start + 1] | 0x20 {
                b'x' => 16,
                b'o' => 8,
                _ => 2,
            };
            self.i += 2;
            let digits_start = self.i;
            while self.i < s.len() && (s[self.i].is_ascii_alphanumeric() || s[self.i] == b'_') {
                self.i += 1;
            }
            let digits: String = std::str::from_utf8(&s[digits_start..self.i])
                .ok()?
                .replace('_', "");
            return i64::from_str_radix(&digits, radix)
                .ok()
                .map(|n| Value::Number(n.into()));
        }
        while self.i < s.len()
            && (s[self.i].is_ascii_digit() || matches!(s[self.i], b'_' | b'.' | b'e' | b'E'))
        {
            if matches!(s[self.i], b'e' | b'E') && matches!(s.get(self.i + 1), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.i += 1;
        }
        if matches!(self.peek(), Some(b'j' | b'J'))
            || self.peek().is_some_and(|c| c.is_ascii_alphabetic())
        {
            return None;
        }
        let text = std::str::from_utf8(&s[start..self.i]).ok()?;
        if text.starts_with('_')
            || text.ends_with('_')
            || text.contains("__")
            || text.contains("_.")
            || text.contains("._")
        {
            return None;
        }
        let clean = text.replace('_', "");
        let is_float = clean.contains(['.', 'e', 'E']);
        if !is_float {
            // `007` is a syntax error in Python 3; `000` is zero.
            if clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0') {
                return None;
            }
            return match clean.parse::<i64>() {
                Ok(n) => Some(Value::Number(n.into())),
                // Larger than JSON's integers here: keep the digits as text, which is what
                // Python's `str()` of the number would print anyway.
                Err(_) => None,
            };
        }
        let f: f64 = clean.parse().ok()?;
        Number::from_f64(f).map(Value::Number)
    }
}

fn negate(n: &Number) -> Option<Number> {
    if let Some(i) = n.as_i64() {
        return Some(i.checked_neg()?.into());
    }
    Number::from_f64(-n.as_f64()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_literals_become_values_and_the_rest_stays_text() {
        for (text, want) in [
            ("5", Some(json!(5))),
            ("-5", Some(json!(-5))),
            ("+5", Some(json!(5))),
            ("1_000", Some(json!(1000))),
            ("1.50", Some(json!(1.5))),
            ("1e3", Some(json!(1000.0))),
            ("0", Some(json!(0))),
            ("00", Some(json!(0))),
            ("0x1f", Some(json!(31))),
            (" \t5 ", Some(json!(5))),
            ("True", Some(json!(true))),
            ("None", Some(json!(null))),
            ("[1, 'a', None]", Some(json!([1, "a", null]))),
            ("(1,)", Some(json!([1]))),
            ("(1)", Some(json!(1))),
            (
                "{'a': [1, 2], 'b': {'c': True}}",
                Some(json!({"a": [1, 2], "b": {"c": true}})),
            ),
            ("'it''s'", Some(json!("its"))),
            ("\"a\\nb\"", Some(json!("a\nb"))),
            ("007", None),
            ("2024-01-01", None),
            ("2024-01-01T00:00:00Z", None),
            ("abc", None),
            ("Truely", None),
            ("5j", None),
            ("1__0", None),
            ("{1, 2}", None),
            ("[1, 2", None),
            ("", None),
            ("\n5", Some(json!(5))),
            ("99999999999999999999", None),
        ] {
            assert_eq!(eval(text), want, "{text:?}");
        }
    }
}

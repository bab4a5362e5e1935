//! Reads a backend answer guided by its shape: what the endpoint reads becomes a JSON value, the
//! rest is only checked to be JSON.
//!
//! Through serde's visitors, every key and every skipped member of an answer costs a trip
//! through the deserializer's generic machinery; for the 9.7 KB recommendations list that was
//! ~180 k instructions a parse, most of a composed request's own work. This reader walks the text
//! itself: keys are compared as bytes where they are, strings are scanned eight bytes at a time, and
//! skipped containers are checked by a loop with a bit stack instead of recursion. What is kept
//! whole (a value the shape keeps entirely, a number) is parsed by serde_json from where it
//! starts, so kept values are exactly serde_json's.
//!
//! Validation matches serde_json's for skipped parts: the JSON grammar, escapes, no control
//! characters in strings. Two differences, both more lenient: nesting deeper than 128 levels is
//! accepted in a skipped member (serde_json refuses it everywhere), and in a body that is not
//! UTF-8 throughout, the key of a skipped member is not checked for UTF-8 (its value never was).

use super::{Shape, EVERY_FIELD};
use serde_json::{Map, Value};

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// Not JSON at this byte offset.
    #[error("invalid JSON at byte {0}")]
    Invalid(usize),
    /// A kept value that serde_json refused (bad UTF-8, a number out of range, too deep).
    #[error("invalid JSON value at byte {0}")]
    Value(usize),
}

/// The powers of ten a short fraction is divided by, as serde_json's table holds them (exact).
const POW10: [f64; 19] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
];

/// Levels of skipped nesting the bit stack holds; deeper input is refused.
const MAX_SKIP_DEPTH: u32 = 128;

pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    /// The same bytes as text, when the whole body is UTF-8 (then kept strings need no check).
    text: Option<&'a str>,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8], text: Option<&'a str>) -> Reader<'a> {
        Reader { bytes, text, pos: 0 }
    }

    /// Reads the one value of the body and checks nothing but whitespace follows.
    pub(super) fn document(mut self, shape: &Shape) -> Result<Value, ReadError> {
        let v = self.value(shape)?;
        self.ws();
        if self.pos != self.bytes.len() {
            return Err(ReadError::Invalid(self.pos));
        }
        Ok(v)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), ReadError> {
        self.ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(ReadError::Invalid(self.pos))
        }
    }

    fn value(&mut self, shape: &Shape) -> Result<Value, ReadError> {
        self.ws();
        match (shape, self.peek()) {
            (Shape::Pick { fields, .. }, Some(b'{')) => self.object(Some(fields)),
            (Shape::Pick { items, leading, .. }, Some(b'[')) => {
                self.array(items.as_deref(), leading.unwrap_or(usize::MAX))
            }
            (Shape::Length, Some(b'{')) => self.object(None),
            (Shape::Length, Some(b'[')) => self.array(None, 0),
            // Strings and literals, the most common kept leaves, are read here; numbers and
            // containers kept whole by serde_json.
            (_, Some(b'"')) => {
                self.pos += 1;
                let (start, end, escaped) = self.string()?;
                self.kept_string(start, end, escaped).map(Value::String)
            }
            (_, Some(b't')) => self.literal(b"true").map(|()| Value::Bool(true)),
            (_, Some(b'f')) => self.literal(b"false").map(|()| Value::Bool(false)),
            (_, Some(b'n')) => self.literal(b"null").map(|()| Value::Null),
            (_, Some(b'-' | b'0'..=b'9')) => self.kept_number(),
            _ => self.whole(),
        }
    }

    /// One whole value, parsed by serde_json from where it starts.
    fn whole(&mut self) -> Result<Value, ReadError> {
        let at = self.pos;
        let (value, used) = match self.text {
            Some(text) => one_value(serde_json::Deserializer::from_str(text.get(at..).unwrap_or(""))),
            None => one_value(serde_json::Deserializer::from_slice(
                self.bytes.get(at..).unwrap_or(&[]),
            )),
        }
        .ok_or(ReadError::Value(at))?;
        self.pos = at + used;
        Ok(value)
    }

    /// A kept number. A short one (at most 18 digits, no exponent: prices, counts, ids) is read
    /// here with serde_json's own arithmetic, so its value is the one serde_json gives (an
    /// integer as `u64` or `i64`, `-0` as a float, a fraction as its digits divided by a power of
    /// ten); starting serde_json's reader for each such number cost more than the number. Others
    /// are parsed by serde_json.
    fn kept_number(&mut self) -> Result<Value, ReadError> {
        let at = self.pos;
        self.number()?;
        let text = self.bytes.get(at..self.pos).unwrap_or_default();
        let (negative, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        let mut significand: u64 = 0;
        let mut count = 0;
        let mut fraction: Option<usize> = None;
        for &b in digits {
            match b {
                b'0'..=b'9' if count < 18 => {
                    significand = significand * 10 + u64::from(b - b'0');
                    count += 1;
                    if let Some(f) = &mut fraction {
                        *f += 1;
                    }
                }
                b'.' => fraction = Some(0),
                // An exponent, or too many digits for the exact path.
                _ => {
                    self.pos = at;
                    return self.whole();
                }
            }
        }
        Ok(match fraction {
            None if !negative => Value::from(significand),
            // serde_json reads `-0` as a float.
            None if significand == 0 => Value::from(-0.0f64),
            None => Value::from(-(significand as i64)),
            Some(places) => {
                let Some(power) = POW10.get(places) else {
                    self.pos = at;
                    return self.whole();
                };
                let f = significand as f64 / power;
                Value::from(if negative { -f } else { f })
            }
        })
    }

    /// An object with the picked `fields`, or (`None`) with every member's key and `null` for its
    /// value, for its length.
    fn object(&mut self, fields: Option<&[(String, Shape)]>) -> Result<Value, ReadError> {
        self.pos += 1; // `{`
        let counted = fields.is_none();
        let fields = fields.unwrap_or_default();
        let keep_all = fields.iter().any(|(k, _)| k == EVERY_FIELD);
        // At most one member per picked field: sized once, the map never grows (growing an
        // order-preserving map reallocates and rehashes it).
        let mut out = if keep_all || counted {
            Map::new()
        } else {
            Map::with_capacity(fields.len())
        };
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(out));
        }
        loop {
            self.expect(b'"')?;
            let (start, end, escaped) = self.string()?;
            self.expect(b':')?;
            // An escaped key is compared by what it means; a plain one as the bytes it is.
            let unescaped = if escaped {
                Some(self.kept_string(start, end, true)?)
            } else {
                None
            };
            let key_bytes = match &unescaped {
                Some(k) => k.as_bytes(),
                None => self.bytes.get(start..end).unwrap_or_default(),
            };
            let picked = if keep_all {
                Some(&Shape::All)
            } else {
                fields.iter().find(|(k, _)| k.as_bytes() == key_bytes).map(|(_, s)| s)
            };
            if picked.is_none() && !counted {
                self.skip()?;
            } else {
                let key = match unescaped {
                    Some(k) => k,
                    None => self.kept_string(start, end, false)?,
                };
                let v = match picked {
                    Some(shape) => self.value(shape)?,
                    // Counted: only the key matters.
                    None => {
                        self.skip()?;
                        Value::Null
                    }
                };
                out.insert(key, v);
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(out));
                }
                _ => return Err(ReadError::Invalid(self.pos)),
            }
        }
    }

    /// An array whose first `leading` elements are read with the shape `items`; the others are
    /// checked and kept as `null`, so that the array's length is right.
    fn array(&mut self, items: Option<&Shape>, leading: usize) -> Result<Value, ReadError> {
        self.pos += 1; // `[`
        let mut out = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(out));
        }
        loop {
            match items {
                Some(shape) if out.len() < leading => out.push(self.value(shape)?),
                _ => {
                    self.skip()?;
                    out.push(Value::Null);
                }
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(out));
                }
                _ => return Err(ReadError::Invalid(self.pos)),
            }
        }
    }

    /// The rest of a string whose opening quote was read: the span of its contents, and whether
    /// it holds an escape. Leaves the position after the closing quote.
    fn string(&mut self) -> Result<(usize, usize, bool), ReadError> {
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.pos = next_special(self.bytes, self.pos);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok((start, self.pos - 1, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                // A control character, or the end of the body.
                _ => return Err(ReadError::Invalid(self.pos)),
            }
        }
    }

    /// One escape, the position at its backslash.
    fn escape(&mut self) -> Result<(), ReadError> {
        let at = self.pos;
        match self.bytes.get(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
            Some(b'u') => {
                let hex = self.bytes.get(at + 2..at + 6).ok_or(ReadError::Invalid(at))?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(ReadError::Invalid(at));
                }
                self.pos += 6;
            }
            _ => return Err(ReadError::Invalid(at)),
        }
        Ok(())
    }

    /// A kept string's value: borrowed text copied, or unescaped by serde_json.
    fn kept_string(&self, start: usize, end: usize, escaped: bool) -> Result<String, ReadError> {
        if escaped {
            // The span with its quotes, as serde_json reads a string.
            let quoted = self.bytes.get(start - 1..end + 1).ok_or(ReadError::Value(start))?;
            return serde_json::from_slice::<String>(quoted).map_err(|_| ReadError::Value(start));
        }
        let text = match self.text {
            Some(t) => t.get(start..end),
            None => self.bytes.get(start..end).and_then(|b| std::str::from_utf8(b).ok()),
        };
        text.map(str::to_owned).ok_or(ReadError::Value(start))
    }

    /// Checks one value and moves past it, keeping nothing. Containers are walked by a loop: a
    /// bit per open level says whether it is an object (1) or an array (0).
    fn skip(&mut self) -> Result<(), ReadError> {
        let mut stack: u128 = 0;
        let mut depth: u32 = 0;
        loop {
            // A value is expected here.
            self.ws();
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        push(&mut stack, &mut depth, true, self.pos)?;
                        self.member_key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        push(&mut stack, &mut depth, false, self.pos)?;
                        continue;
                    }
                }
                Some(b'"') => {
                    self.pos += 1;
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(ReadError::Invalid(self.pos)),
            }
            // A value ended: close what it ends, or go on to the next element or member.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = stack & 1 == 1;
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if in_object {
                            self.member_key()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    _ => return Err(ReadError::Invalid(self.pos)),
                }
                self.pos += 1;
                stack >>= 1;
                depth -= 1;
            }
        }
    }

    /// A member's key and its colon, inside a skipped object.
    fn member_key(&mut self) -> Result<(), ReadError> {
        self.expect(b'"')?;
        self.string()?;
        self.expect(b':')
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), ReadError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(ReadError::Invalid(self.pos))
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), ReadError> {
        let at = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(ReadError::Invalid(self.pos));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(ReadError::Invalid(at)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), ReadError> {
        let at = self.pos;
        self.digits();
        if self.pos == at {
            Err(ReadError::Invalid(at))
        } else {
            Ok(())
        }
    }
}

/// The first byte at or after `from` that ends a run of plain string content: `"`, `\\` or a
/// control character (or the body's length). Eight bytes at a time: most strings in an answer
/// are short, where a vector search's set-up costs more than it saves (sixteen bytes at a time
/// with SSE2 was measured: no faster on the shipped answers, whose strings average 15 bytes).
fn next_special(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // A byte's high bit is set where it is zero (or below 0x20, for `w`); the lowest flag
        // is exact, which is the one used.
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGHS;
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return at;
        }
        at += 1;
    }
    at
}

fn push(stack: &mut u128, depth: &mut u32, object: bool, at: usize) -> Result<(), ReadError> {
    if *depth >= MAX_SKIP_DEPTH {
        return Err(ReadError::Invalid(at));
    }
    *stack = (*stack << 1) | u128::from(object);
    *depth += 1;
    Ok(())
}

/// The first value of `de`'s input and the bytes it took; `None` when it is not a value.
fn one_value<'de, R: serde_json::de::Read<'de>>(de: serde_json::Deserializer<R>) -> Option<(Value, usize)> {
    let mut values = de.into_iter::<Value>();
    let value = values.next()?.ok()?;
    Some((value, values.byte_offset()))
}

#[cfg(test)]
mod tests {
    use super::next_special;

    fn special(b: u8) -> bool {
        b == b'"' || b == b'\\' || b < 0x20
    }

    #[test]
    fn the_word_scan_finds_what_a_byte_by_byte_scan_finds() {
        // Plain bytes of every kind (ASCII, UTF-8 continuation and lead bytes, 0x20 and 0x7f at
        // the edges), with one special byte at every position of a 40-byte run, from every start.
        let plain: Vec<u8> = (0x20..=0xffu8).filter(|b| !special(*b)).collect();
        for special_byte in [b'"', b'\\', 0x00, 0x0a, 0x1f] {
            for at in 0..=40 {
                let mut bytes: Vec<u8> = (0..40).map(|i| plain[(i * 37 + at) % plain.len()]).collect();
                if at < 40 {
                    bytes[at] = special_byte;
                }
                for from in 0..=bytes.len() {
                    let expected = (from..bytes.len()).find(|&i| special(bytes[i])).unwrap_or(bytes.len());
                    assert_eq!(
                        next_special(&bytes, from),
                        expected,
                        "special {special_byte:#04x} at {at}, from {from}"
                    );
                }
            }
        }
    }
}

//! `application/x-www-form-urlencoded` bodies built in one buffer.
//!
//! A `/users` body carries up to 10,000 rows of hashes: building it as a JSON `String`, then a
//! form-encoded `String` of that, then the request's bytes, held three growing copies of about
//! ten megabytes at once (with the doubling of each growing buffer on top), too much for the
//! host's 64 MiB per instance. Here a body is measured first, then encoded once into a `Vec`
//! of exactly that size: JSON values are serialized straight through the percent-encoder, so
//! no intermediate text exists.
//!
//! The encoding is the WHATWG `application/x-www-form-urlencoded` serializer's (the one the
//! SDK's `RequestBuilder::form` uses): ASCII alphanumerics and `*-._` are kept, a space is
//! `+`, every other byte `%XX`.

use std::io;

use serde::Serialize;

/// Whether `byte` is sent as itself.
fn kept(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'*' | b'-' | b'.' | b'_')
}

/// How many bytes `byte` takes once encoded.
fn width(byte: u8) -> usize {
    if kept(byte) || byte == b' ' { 1 } else { 3 }
}

/// The encoded length of `bytes`.
pub fn encoded_len(bytes: &[u8]) -> usize {
    bytes.iter().map(|&b| width(b)).sum()
}

/// Append `bytes`, encoded, to `out`.
pub fn encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if kept(byte) {
            out.push(byte);
        } else if byte == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0x0f)]]);
        }
    }
}

/// Counts the encoded length of what is written.
struct Measure(usize);

impl io::Write for Measure {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += encoded_len(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encodes what is written into a buffer.
struct Encode<'a>(&'a mut Vec<u8>);

impl io::Write for Encode<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        encode_into(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A value that can be written as JSON (any `Serialize`), usable as a trait object.
pub trait Json {
    /// Write the JSON of `self` to `out`.
    fn write_json(&self, out: &mut dyn io::Write) -> Result<(), serde_json::Error>;
}

impl<T: Serialize + ?Sized> Json for T {
    fn write_json(&self, out: &mut dyn io::Write) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
}

/// A form field's value.
enum Value<'a> {
    /// Text, sent as it is.
    Text(&'a str),
    /// A value sent as its JSON.
    Json(&'a dyn Json),
}

/// A form's fields, in order, with text or JSON values.
#[derive(Default)]
pub struct Form<'a> {
    fields: Vec<(&'a str, Value<'a>)>,
}

impl<'a> Form<'a> {
    /// Add a text field.
    pub fn text(&mut self, name: &'a str, value: &'a str) -> &mut Self {
        self.fields.push((name, Value::Text(value)));
        self
    }

    /// Add a field holding `value` as JSON.
    pub fn json(&mut self, name: &'a str, value: &'a dyn Json) -> &mut Self {
        self.fields.push((name, Value::Json(value)));
        self
    }

    /// The exact length of the encoded body.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Result<usize, serde_json::Error> {
        let mut len = self.fields.len().saturating_sub(1);
        for (name, value) in &self.fields {
            len += encoded_len(name.as_bytes()) + 1;
            len += match value {
                Value::Text(text) => encoded_len(text.as_bytes()),
                Value::Json(value) => {
                    let mut measure = Measure(0);
                    value.write_json(&mut measure)?;
                    measure.0
                }
            };
        }
        Ok(len)
    }

    /// The encoded body, in one buffer of exactly its size.
    pub fn body(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut body = Vec::with_capacity(self.len()?);
        for (i, (name, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                body.push(b'&');
            }
            encode_into(&mut body, name.as_bytes());
            body.push(b'=');
            match value {
                Value::Text(text) => encode_into(&mut body, text.as_bytes()),
                Value::Json(value) => value.write_json(&mut Encode(&mut body))?,
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_sdk_form() {
        let text = "a b&c=d/é*-._~\"[1,2]\"";
        let mut form = Form::default();
        let list = vec!["x y", "\"q\""];
        form.text("name one", text).json("list", &list);
        let body = form.body().unwrap();
        assert_eq!(body.len(), form.len().unwrap());
        assert_eq!(body.capacity(), body.len());
        let expected = audience_plugin_sdk::http::RequestBuilder::post("http://x")
            .form(&[("name one", text.to_string()), ("list", serde_json::to_string(&list).unwrap())])
            .build()
            .body;
        assert_eq!(String::from_utf8(body).unwrap(), String::from_utf8(expected).unwrap());
    }
}

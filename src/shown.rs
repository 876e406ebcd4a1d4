//! Text made safe to show. File names and document text come from whoever wrote the files;
//! printed as they are, a control character in them drives the user's terminal (an escape
//! sequence recolours or rewrites the screen, a newline in a file name forges a result line,
//! a right-to-left override reverses what follows). Every place that shows a name or a
//! document's text to a person (the CLI, the TUI, notes, errors, exported Markdown) passes it
//! through [`name`], [`text`] or [`line`], and `--json` output through [`json`].

use std::fmt::Write;

/// A file name or path (a path key: bytes that are not UTF-8 shown as `\xNN`) with every
/// control character visible: `\n`, `\r`, `\t`, `\x1b`, `\u{85}`, `\u{202e}`.
pub fn name(key: &str) -> String {
    escape(&crate::fsutil::show_key(key), false)
}

/// Document text: newlines and tabs kept, every other control character visible.
pub fn text(s: &str) -> String {
    escape(s, true)
}

/// Document text on one line: whitespace collapsed, every control character visible.
pub fn line(s: &str) -> String {
    escape(&s.split_whitespace().collect::<Vec<_>>().join(" "), false)
}

/// Serialized JSON with the C1 controls and the bidirectional controls escaped as `\uXXXX`.
/// JSON requires only C0 escaped, and a terminal acts on the rest; in a JSON text these
/// characters can only stand inside strings, where the escape means the same character.
pub fn json(serialized: String) -> String {
    if !serialized.chars().any(|c| is_c1(c) || is_bidi(c)) {
        return serialized;
    }
    let mut out = String::with_capacity(serialized.len() + 16);
    for c in serialized.chars() {
        if is_c1(c) || is_bidi(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9f}').contains(&c)
}

/// The characters that reorder text on screen (Unicode's bidirectional formatting characters
/// and marks).
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

fn escape(s: &str, keep_lines: bool) -> String {
    if !s
        .chars()
        .any(|c| c.is_control() || is_bidi(c) || (!keep_lines && c == '\n'))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\t' if keep_lines => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_c1(c) || is_bidi(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A terminal writer that drops the bidirectional controls from what the TUI draws. The TUI's
/// cells hold document text; its widgets skip the other control characters, but these ones
/// take no cell and reorder what the terminal shows after them.
pub struct Screen<W: std::io::Write> {
    inner: W,
    /// The start of a character that the next write completes.
    carry: Vec<u8>,
}

impl<W: std::io::Write> Screen<W> {
    pub fn new(inner: W) -> Self {
        Screen {
            inner,
            carry: Vec::new(),
        }
    }
}

impl<W: std::io::Write> std::io::Write for Screen<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(buf);
        let n = data.len();
        // Bytes that may begin a bidirectional control wait for the rest of it.
        let keep = match data.as_slice() {
            [.., 0xE2, 0x80 | 0x81] => 2,
            [.., 0xE2 | 0xD8] => 1,
            _ => 0,
        };
        let mut out = Vec::with_capacity(n);
        let mut i = 0;
        while i < n - keep {
            let len = match &data[i..] {
                [0xE2, 0x80, 0xAA..=0xAE | 0x8E | 0x8F, ..] | [0xE2, 0x81, 0xA6..=0xA9, ..] => 3,
                [0xD8, 0x9C, ..] => 2,
                _ => 0,
            };
            if len == 0 {
                out.push(data[i]);
                i += 1;
            } else {
                i += len;
            }
        }
        self.inner.write_all(&out)?;
        self.carry = data[i..].to_vec();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_show_every_control() {
        let forged = "x\n 2. 0.9999  etc-shadow \u{202e}gnp.md";
        assert_eq!(name(forged), "x\\n 2. 0.9999  etc-shadow \\u{202e}gnp.md");
        assert_eq!(name("a\x1b[31mb\tc\r\u{85}"), "a\\x1b[31mb\\tc\\r\\u{85}");
        assert_eq!(name("plain/café.md"), "plain/café.md");
        use std::os::unix::ffi::OsStrExt;
        let key = crate::fsutil::path_key(std::path::Path::new(std::ffi::OsStr::from_bytes(
            b"caf\xe9\n",
        )));
        assert_eq!(name(&key), "caf\\xE9\\n");
    }

    #[test]
    fn text_keeps_its_lines_and_line_keeps_one() {
        assert_eq!(
            text("one\ntwo\t\x1b[2J\u{2067}"),
            "one\ntwo\t\\x1b[2J\\u{2067}"
        );
        assert_eq!(line(" one\n two \u{7f}"), "one two \\x7f");
    }

    #[test]
    fn the_screen_never_receives_a_bidirectional_control() {
        use std::io::Write;
        let mut screen = Screen::new(Vec::new());
        let text = "a\u{202e}b\u{2066}c\u{200f}d\u{61c}e…é";
        let bytes = text.as_bytes();
        // Split everywhere, as a writer may be called.
        for chunk in bytes.chunks(1) {
            screen.write_all(chunk).unwrap_or_default();
        }
        screen.write_all(b"\x1b[0m").unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&screen.inner), "abcde…é\x1b[0m");
    }

    #[test]
    fn json_escapes_what_terminals_act_on() {
        let s = serde_json::to_string("a\u{9b}31m\u{202e}b\n").unwrap_or_default();
        let safe = json(s);
        assert_eq!(safe, "\"a\\u009b31m\\u202eb\\n\"");
        let back: String = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back, "a\u{9b}31m\u{202e}b\n");
    }
}

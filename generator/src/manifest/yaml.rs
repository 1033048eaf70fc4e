//! YAML text → `serde_json::Value`, remembering where every node came from.
//!
//! JSON Schema validators report errors as JSON pointers into a JSON value. To turn those
//! back into `file:line:col`, the reader records the position of every node under its JSON
//! pointer, and of every mapping key under `pointer#key`.
//!
//! The reader pulls events from `saphyr_parser` instead of using saphyr's `MarkedYaml`
//! loader: the loader recurses once per nesting level (so deeply nested input overflows the
//! stack before any limit can apply) and knows nothing of merge keys, tags or non-string
//! keys. Pulling events keeps the stack flat, lets every limit apply while the input is
//! read, and produces the JSON value in one pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};

use super::diagnostic::{codes, located, quote_user, Diagnostic, SourceLines};

/// Bounds on what the reader accepts, so hostile input produces a diagnostic instead of
/// exhausting memory or the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlLimits {
    /// Largest file, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of mappings and sequences (the root counts as 1).
    pub max_depth: usize,
    /// Most nodes in the resulting value, alias copies included.
    pub max_nodes: usize,
    /// Most nodes that alias expansion may copy in total.
    pub max_alias_nodes: usize,
}

impl Default for YamlLimits {
    /// AIPerf's own `plugins.yaml` (270 entries) is about 60 KiB, 5 levels deep and under
    /// 5,000 nodes; these limits leave two orders of magnitude of room.
    fn default() -> Self {
        Self {
            max_bytes: 8 << 20,
            max_depth: 64,
            max_nodes: 1_000_000,
            max_alias_nodes: 100_000,
        }
    }
}

/// 1-based line and column (in characters) of a node or key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
}

/// Positions of nodes and keys by JSON pointer, plus each mapping's keys in file order
/// (`serde_json::Map` sorts its keys, and file order matters for plugin entries).
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    positions: HashMap<String, Pos>,
    key_order: HashMap<String, Vec<String>>,
}

impl SpanIndex {
    /// Position recorded under `key`: a JSON pointer (`/endpoint/chat`) for a node, or
    /// `pointer#key` (`/endpoint/chat#key`) for the key that holds the node.
    pub fn get(&self, key: &str) -> Option<Pos> {
        self.positions.get(key).copied()
    }

    /// Position of the node at `pointer`.
    pub fn node(&self, pointer: &str) -> Option<Pos> {
        self.get(pointer)
    }

    /// Position of the mapping key whose value is at `pointer`.
    pub fn key(&self, pointer: &str) -> Option<Pos> {
        self.positions.get(&format!("{pointer}#key")).copied()
    }

    /// Position of the node at `pointer`, or of its nearest recorded ancestor. Nodes copied
    /// in by an alias have no position of their own; they resolve to the alias.
    pub fn locate(&self, pointer: &str) -> Option<Pos> {
        let mut current = pointer;
        loop {
            if let Some(pos) = self.node(current) {
                return Some(pos);
            }
            match current.rfind('/') {
                Some(i) => current = &current[..i],
                None => return None,
            }
        }
    }

    /// Keys of the mapping at `pointer`, in file order.
    pub fn keys(&self, pointer: &str) -> Option<&[String]> {
        self.key_order.get(pointer).map(Vec::as_slice)
    }
}

/// A parsed YAML file: its value, the positions of its nodes, and its lines for snippets.
#[derive(Debug, Clone)]
pub struct YamlDocument {
    /// The file the text came from (used in diagnostics).
    pub file: PathBuf,
    /// The document as JSON. `Null` for an empty file.
    pub value: Value,
    /// Where each node and key is.
    pub spans: SpanIndex,
    pub(crate) lines: SourceLines,
    /// Nodes replaced by null or dropped after a YAML diagnostic; schema errors at or under
    /// them would only repeat that diagnostic.
    pub(crate) rejected: Vec<String>,
    /// Mappings that lost a key to a YAML diagnostic (merge key, non-string key); "missing
    /// key" errors on them may be consequences.
    pub(crate) incomplete: Vec<String>,
    /// Where each YAML diagnostic is (the node, or the mapping that lost a key), so that a
    /// partial load leaves out what it is in rather than the whole file.
    pub(crate) faults: Vec<String>,
}

impl YamlDocument {
    /// Line `line` (1-based) of the source, without its line break.
    pub fn source_line(&self, line: usize) -> Option<String> {
        self.lines.line(line)
    }

    /// Whether the node at `pointer` (or an ancestor) was dropped by a YAML diagnostic.
    pub(crate) fn is_rejected(&self, pointer: &str) -> bool {
        self.rejected.iter().any(|r| is_at_or_under(pointer, r))
    }

    /// Whether the mapping at `pointer` lost keys to a YAML diagnostic.
    pub(crate) fn is_incomplete(&self, pointer: &str) -> bool {
        self.incomplete.iter().any(|p| p == pointer)
    }
}

/// Whether `pointer` is `base` or inside it.
pub(crate) fn is_at_or_under(pointer: &str, base: &str) -> bool {
    pointer == base || (pointer.starts_with(base) && pointer[base.len()..].starts_with('/'))
}

/// Appends a mapping key to a dotted YAML path, quoting keys that would be ambiguous.
pub(crate) fn push_path_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if plain {
        path.push_str(key);
    } else {
        // Debug quoting escapes what needs escaping; cap the length first, as `quote_user`
        // does for messages.
        let short: String = key.chars().take(80).collect();
        path.push_str(&format!("{short:?}"));
    }
}

/// Escapes one JSON pointer segment (`~` → `~0`, `/` → `~1`).
pub fn escape_pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Splits a JSON pointer into unescaped segments.
pub fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Reads `path` as UTF-8 text within `limits.max_bytes`.
///
/// # Errors
/// A diagnostic when the file cannot be read, is too large, or is not UTF-8 (pointing at the
/// first invalid byte's line and column).
#[allow(
    clippy::result_large_err,
    reason = "called once per file; a diagnostic is the natural error here"
)]
pub fn read_source(path: &Path, limits: &YamlLimits) -> Result<String, Diagnostic> {
    use std::io::Read;

    let io_error = |e: std::io::Error| {
        Diagnostic::error(
            codes::IO,
            path,
            format!("cannot read `{}`: {e}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it" without
    // trusting file metadata (pipes and procfs report no size).
    let cap = u64::try_from(limits.max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(cap).read_to_end(&mut bytes).map_err(io_error)?;
    decode_source(bytes, path, limits)
}

/// Checks size and UTF-8 of already-read bytes.
///
/// # Errors
/// See [`read_source`].
#[allow(
    clippy::result_large_err,
    reason = "called once per file; a diagnostic is the natural error here"
)]
pub fn decode_source(
    bytes: Vec<u8>,
    path: &Path,
    limits: &YamlLimits,
) -> Result<String, Diagnostic> {
    if bytes.len() > limits.max_bytes {
        return Err(Diagnostic::error(
            codes::LIMIT_EXCEEDED,
            path,
            format!("file is larger than {} bytes", limits.max_bytes),
        )
        .with_help("manifests are small; check that this is the intended file"));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let bytes = e.as_bytes();
            let offset = e.utf8_error().valid_up_to();
            let valid = &bytes[..offset];
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            // The prefix is valid UTF-8 by construction; count characters, not bytes.
            let col =
                std::str::from_utf8(&valid[line_start..]).map_or(1, |s| s.chars().count() + 1);
            let byte = bytes.get(offset).copied().unwrap_or_default();
            let line_end = bytes[offset..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| offset + i);
            let snippet = String::from_utf8_lossy(&bytes[line_start..line_end])
                .trim_end_matches('\r')
                .to_owned();
            Err(Diagnostic::error(
                codes::NOT_UTF8,
                path,
                format!(
                    "file is not valid UTF-8: invalid byte 0x{byte:02X} at byte offset {offset}"
                ),
            )
            .at(line, col)
            .with_snippet(Some(snippet))
            .with_help("save the file as UTF-8"))
        }
    }
}

/// Parses YAML text into a [`YamlDocument`].
///
/// Soft problems (duplicate keys, merge keys, non-string keys, unsupported tags or values)
/// are reported and the offending node is left out, so the caller can validate the rest and
/// report everything at once. Hard problems (syntax errors, exceeded limits, a second
/// document) stop parsing: the document is `None`.
pub fn parse_yaml(
    text: &str,
    file: &Path,
    limits: &YamlLimits,
) -> (Option<YamlDocument>, Vec<Diagnostic>) {
    let lines = SourceLines::new(text);
    if text.len() > limits.max_bytes {
        let d = Diagnostic::error(
            codes::LIMIT_EXCEEDED,
            file,
            format!("file is larger than {} bytes", limits.max_bytes),
        );
        return (None, vec![d]);
    }
    // A BOM is legal at the start of a YAML stream; dropping it keeps column 1 at the first
    // visible character.
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut builder = Builder::new(file, &lines, *limits);
    // saphyr-parser is a third-party state machine fed with user input: a panic inside it
    // must become a diagnostic, not abort the generator.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut parser = Parser::new_from_str(body);
        builder.run(&mut parser)
    }));
    let fatal = match outcome {
        Ok(result) => result.err().map(|d| *d),
        Err(_) => Some(Diagnostic::error(
            codes::YAML_SYNTAX,
            file,
            "the YAML parser failed on this input",
        )),
    };

    let mut diagnostics = std::mem::take(&mut builder.diagnostics);
    if let Some(d) = fatal {
        diagnostics.push(d);
        return (None, diagnostics);
    }
    let value = builder.root.take().unwrap_or(Value::Null);
    let spans = std::mem::take(&mut builder.spans);
    let rejected = std::mem::take(&mut builder.rejected);
    let incomplete = std::mem::take(&mut builder.incomplete);
    let faults = std::mem::take(&mut builder.faults);
    drop(builder);
    let doc = YamlDocument {
        file: file.to_owned(),
        value,
        spans,
        lines,
        rejected,
        incomplete,
        faults,
    };
    (Some(doc), diagnostics)
}

/// An error that stops reading. Boxed: it travels up through every event handler.
type Fatal = Box<Diagnostic>;

/// A finished node: its value and what alias expansion needs to know about it.
struct Built {
    value: Value,
    nodes: usize,
    height: usize,
}

/// Where a node sits: its JSON pointer and dotted YAML path. `None` inside a discarded
/// subtree, whose positions must not overwrite real ones.
#[derive(Clone, Default)]
struct Loc {
    pointer: String,
    path: String,
}

impl Loc {
    fn key(&self, key: &str) -> Loc {
        let mut path = self.path.clone();
        push_path_key(&mut path, key);
        Loc {
            pointer: format!("{}/{}", self.pointer, escape_pointer_segment(key)),
            path,
        }
    }

    fn index(&self, i: usize) -> Loc {
        Loc {
            pointer: format!("{}/{i}", self.pointer),
            path: format!("{}[{i}]", self.path),
        }
    }
}

/// What the next node inside a mapping is for.
enum Slot {
    /// The next node is a key.
    Key,
    /// The next node is the value of this key, located at `child` (computed once, when
    /// the key is read: every node of a manifest is a key's value, so this is hot).
    Value { key: String, child: Option<Loc> },
    /// The next node is a value to parse and drop (its key was rejected).
    Discard,
}

enum Container {
    Seq(Vec<Value>),
    Map {
        map: Map<String, Value>,
        slot: Slot,
        seen: HashMap<String, Pos>,
    },
}

struct Frame {
    container: Container,
    anchor: usize,
    loc: Option<Loc>,
    /// The collection carried an unsupported tag: it becomes null once complete.
    rejected: bool,
    nodes: usize,
    height: usize,
}

/// Where the node being started goes.
enum Target {
    Key,
    Node(Option<Loc>),
}

struct Builder<'a> {
    file: &'a Path,
    lines: &'a SourceLines,
    limits: YamlLimits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Built>,
    root: Option<Value>,
    spans: SpanIndex,
    diagnostics: Vec<Diagnostic>,
    rejected: Vec<String>,
    incomplete: Vec<String>,
    faults: Vec<String>,
    documents: usize,
    total_nodes: usize,
    alias_nodes: usize,
}

impl<'a> Builder<'a> {
    fn new(file: &'a Path, lines: &'a SourceLines, limits: YamlLimits) -> Self {
        Self {
            file,
            lines,
            limits,
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            spans: SpanIndex::default(),
            diagnostics: Vec::new(),
            rejected: Vec::new(),
            incomplete: Vec::new(),
            faults: Vec::new(),
            documents: 0,
            total_nodes: 0,
            alias_nodes: 0,
        }
    }

    fn run<'input>(
        &mut self,
        parser: &mut Parser<'input, impl saphyr_parser::Input>,
    ) -> Result<(), Fatal> {
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| self.scan_error(&e))?;
            if self.on_event(event, span)? {
                break;
            }
        }
        Ok(())
    }

    /// Handles one event; `Ok(true)` ends the stream.
    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<bool, Fatal> {
        let pos = pos_of(span);
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::StreamEnd => return Ok(true),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    let message = "more than one YAML document in the file";
                    let help = "a manifest is a single document; remove the `---` separator \
                                and what follows, or merge the documents";
                    let d = self.err(codes::MULTIPLE_DOCUMENTS, message, pos, None);
                    return Err(d.with_help(help).into());
                }
            }
            Event::SequenceStart(anchor, tag) => {
                self.start(
                    Container::Seq(Vec::new()),
                    anchor,
                    tag.as_deref(),
                    "seq",
                    pos,
                )?;
            }
            Event::MappingStart(anchor, tag) => {
                let container = Container::Map {
                    map: Map::new(),
                    slot: Slot::Key,
                    seen: HashMap::new(),
                };
                self.start(container, anchor, tag.as_deref(), "map", pos)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(false);
                };
                let value = match frame.container {
                    _ if frame.rejected => Value::Null,
                    Container::Seq(items) => Value::Array(items),
                    Container::Map { map, .. } => Value::Object(map),
                };
                let built = Built {
                    value,
                    nodes: frame.nodes,
                    height: frame.height,
                };
                if frame.anchor > 0 {
                    self.anchors.insert(frame.anchor, clone_built(&built));
                }
                self.finish(built);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let loc = match self.target() {
                    Target::Key => {
                        self.key_scalar(&text, style, tag.as_deref(), pos);
                        if anchor > 0 {
                            let value = Value::String(text.into_owned());
                            self.anchors.insert(
                                anchor,
                                Built {
                                    value,
                                    nodes: 1,
                                    height: 1,
                                },
                            );
                        }
                        return Ok(false);
                    }
                    Target::Node(loc) => loc,
                };
                self.count_nodes(1, pos)?;
                self.record(loc.as_ref(), pos);
                let value = self.scalar_value(text, style, tag, pos, loc.as_ref());
                let built = Built {
                    value,
                    nodes: 1,
                    height: 1,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, clone_built(&built));
                }
                self.finish(built);
            }
            Event::Alias(id) => self.alias(id, pos)?,
        }
        Ok(false)
    }

    fn target(&self) -> Target {
        let Some(frame) = self.stack.last() else {
            return Target::Node(Some(Loc::default()));
        };
        match &frame.container {
            Container::Seq(items) => Target::Node(frame.loc.as_ref().map(|l| l.index(items.len()))),
            Container::Map {
                slot: Slot::Key, ..
            } => Target::Key,
            Container::Map {
                slot: Slot::Value { child, .. },
                ..
            } => Target::Node(child.clone()),
            Container::Map {
                slot: Slot::Discard,
                ..
            } => Target::Node(None),
        }
    }

    /// The location of the collection being filled (for diagnostics about its keys).
    fn current_loc(&self) -> Option<Loc> {
        self.stack.last().and_then(|f| f.loc.clone())
    }

    /// Reports a problem that does not stop parsing, and where it is. Without a location
    /// the node is inside a subtree already dropped for a problem recorded where it starts.
    fn soft(&mut self, d: Diagnostic, at: Option<&Loc>) {
        self.diagnostics.push(d);
        if let Some(l) = at {
            self.faults.push(l.pointer.clone());
        }
    }

    fn record(&mut self, loc: Option<&Loc>, pos: Pos) {
        if let Some(loc) = loc {
            self.spans.positions.insert(loc.pointer.clone(), pos);
        }
    }

    fn start(
        &mut self,
        container: Container,
        anchor: usize,
        tag: Option<&Tag>,
        core_tag: &str,
        pos: Pos,
    ) -> Result<(), Fatal> {
        let loc = match self.target() {
            Target::Key => {
                let loc = self.current_loc();
                return Err(self
                    .err(
                        codes::NON_STRING_KEY,
                        "mapping keys must be strings, not mappings or sequences",
                        pos,
                        loc.as_ref(),
                    )
                    .with_help("use a plain name as the key")
                    .into());
            }
            Target::Node(loc) => loc,
        };
        if self.stack.len() >= self.limits.max_depth {
            return Err(Box::new(self.depth_error(pos, loc.as_ref())));
        }
        self.count_nodes(1, pos)?;
        self.record(loc.as_ref(), pos);
        let rejected = tag.is_some_and(|t| !(t.is_yaml_core_schema() && t.suffix == core_tag));
        if let (true, Some(t)) = (rejected, tag) {
            self.reject_tag(t, pos, loc.as_ref());
        }
        if let (Some(l), Container::Map { .. }) = (&loc, &container) {
            self.spans.key_order.insert(l.pointer.clone(), Vec::new());
        }
        // Children of a rejected collection are dropped with it; keep their positions out
        // of the index.
        let loc = if rejected { None } else { loc };
        self.stack.push(Frame {
            container,
            anchor,
            loc,
            rejected,
            nodes: 1,
            height: 1,
        });
        Ok(())
    }

    /// Attaches a finished node to its parent (or makes it the root).
    fn finish(&mut self, built: Built) {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(built.value);
            return;
        };
        frame.nodes = frame.nodes.saturating_add(built.nodes);
        frame.height = frame.height.max(built.height + 1);
        match &mut frame.container {
            Container::Seq(items) => items.push(built.value),
            Container::Map { map, slot, .. } => match std::mem::replace(slot, Slot::Key) {
                Slot::Value { key, .. } => {
                    if let Some(loc) = &frame.loc {
                        if let Some(order) = self.spans.key_order.get_mut(&loc.pointer) {
                            order.push(key.clone());
                        }
                    }
                    map.insert(key, built.value);
                }
                // Unreachable in practice (keys are handled before they finish); treat the
                // node as a rejected key so its value is dropped.
                Slot::Key => *slot = Slot::Discard,
                Slot::Discard => {}
            },
        }
    }

    /// Handles a scalar in key position.
    fn key_scalar(&mut self, text: &str, style: ScalarStyle, tag: Option<&Tag>, pos: Pos) {
        let loc = self.current_loc();
        let parsed = Scalar::parse_from_cow_and_metadata(text.into(), style, None);
        let rejection = if tag.is_some_and(|t| !(t.is_yaml_core_schema() && t.suffix == "str")) {
            Some(
                self.err(
                    codes::UNSUPPORTED_VALUE,
                    format!("unsupported tag on key `{}`", quote_user(text)),
                    pos,
                    loc.as_ref(),
                )
                .with_help("remove the tag; keys are plain strings"),
            )
        } else if style == ScalarStyle::Plain && text == "<<" {
            let message = "YAML merge keys (`<<`) are not supported";
            let help = "write the keys out in full: merge keys are a YAML 1.1 extension that \
                        YAML 1.2 loaders treat as an ordinary key";
            Some(
                self.err(codes::MERGE_KEY, message, pos, loc.as_ref())
                    .with_help(help),
            )
        } else if tag.is_none() && !matches!(parsed, Some(Scalar::String(_))) {
            let kind = match parsed {
                Some(Scalar::Null) => "null",
                Some(Scalar::Boolean(_)) => "a boolean",
                Some(Scalar::Integer(_)) => "an integer",
                Some(Scalar::FloatingPoint(_)) => "a float",
                _ => "not a string",
            };
            let shown = if text.is_empty() { "~" } else { text };
            Some(
                self.err(
                    codes::NON_STRING_KEY,
                    format!(
                        "mapping key `{}` is {kind}, not a string",
                        quote_user(shown)
                    ),
                    pos,
                    loc.as_ref(),
                )
                .with_help(format!("quote the key: `\"{}\":`", quote_user(text))),
            )
        } else {
            None
        };
        let next = match rejection {
            Some(d) => {
                self.soft(d, loc.as_ref());
                if let Some(l) = loc {
                    self.incomplete.push(l.pointer);
                }
                Slot::Discard
            }
            None => self.accept_key(text.to_owned(), pos),
        };
        self.set_slot(next);
    }

    /// Checks a string key for duplicates and records its position.
    fn accept_key(&mut self, key: String, pos: Pos) -> Slot {
        let Some(frame) = self.stack.last_mut() else {
            return Slot::Discard;
        };
        let Container::Map { seen, .. } = &mut frame.container else {
            return Slot::Discard;
        };
        if let Some(first) = seen.get(&key).copied() {
            let loc = frame.loc.as_ref().map(|l| l.key(&key));
            let message = format!(
                "duplicate key `{}` (first defined at line {}, column {})",
                quote_user(&key),
                first.line,
                first.col
            );
            let d = self
                .err(codes::DUPLICATE_KEY, message, pos, loc.as_ref())
                .with_help("remove one of the two entries; YAML mappings cannot repeat a key");
            self.soft(d, loc.as_ref());
            return Slot::Discard;
        }
        seen.insert(key.clone(), pos);
        let child = frame.loc.as_ref().map(|l| l.key(&key));
        if let Some(child) = &child {
            self.spans
                .positions
                .insert(format!("{}#key", child.pointer), pos);
        }
        Slot::Value { key, child }
    }

    fn set_slot(&mut self, next: Slot) {
        if let Some(Frame {
            container: Container::Map { slot, .. },
            ..
        }) = self.stack.last_mut()
        {
            *slot = next;
        }
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), Fatal> {
        let target = self.target();
        let Some(anchor) = self.anchors.get(&id) else {
            // The parser rejects unknown anchors; an anchor still being built (an alias
            // inside its own anchor) lands here.
            let loc = match &target {
                Target::Key => self.current_loc(),
                Target::Node(loc) => loc.clone(),
            };
            let d = self.err(
                codes::UNSUPPORTED_VALUE,
                "alias refers to an anchor that is not complete yet (recursive alias)",
                pos,
                loc.as_ref(),
            );
            self.soft(d, loc.as_ref());
            return self.placeholder(target, pos);
        };
        let (nodes, height) = (anchor.nodes, anchor.height);
        let loc = match target {
            Target::Key => {
                let next = match &anchor.value {
                    Value::String(key) => {
                        let key = key.clone();
                        self.accept_key(key, pos)
                    }
                    _ => {
                        let loc = self.current_loc();
                        let d = self.err(
                            codes::NON_STRING_KEY,
                            "alias used as a key does not refer to a string",
                            pos,
                            loc.as_ref(),
                        );
                        self.soft(d, loc.as_ref());
                        if let Some(l) = loc {
                            self.incomplete.push(l.pointer);
                        }
                        Slot::Discard
                    }
                };
                self.set_slot(next);
                return Ok(());
            }
            Target::Node(loc) => loc,
        };
        self.alias_nodes = self.alias_nodes.saturating_add(nodes);
        if self.alias_nodes > self.limits.max_alias_nodes {
            let message = format!(
                "alias expansion exceeds {} nodes (possible billion-laughs attack)",
                self.limits.max_alias_nodes
            );
            return Err(self
                .err(codes::LIMIT_EXCEEDED, message, pos, loc.as_ref())
                .with_help("write the data out instead of nesting aliases")
                .into());
        }
        if self.stack.len() + height > self.limits.max_depth {
            return Err(Box::new(self.depth_error(pos, loc.as_ref())));
        }
        self.count_nodes(nodes, pos)?;
        self.record(loc.as_ref(), pos);
        let built = self.anchors.get(&id).map(clone_built);
        if let Some(built) = built {
            self.finish(built);
        }
        Ok(())
    }

    /// Keeps the parent's structure consistent after a rejected node.
    fn placeholder(&mut self, target: Target, pos: Pos) -> Result<(), Fatal> {
        self.count_nodes(1, pos)?;
        match target {
            Target::Key => self.set_slot(Slot::Discard),
            Target::Node(loc) => {
                if let Some(l) = loc {
                    self.rejected.push(l.pointer);
                }
                self.finish(Built {
                    value: Value::Null,
                    nodes: 1,
                    height: 1,
                });
            }
        }
        Ok(())
    }

    fn count_nodes(&mut self, n: usize, pos: Pos) -> Result<(), Fatal> {
        self.total_nodes = self.total_nodes.saturating_add(n);
        if self.total_nodes > self.limits.max_nodes {
            let message = format!("document has more than {} nodes", self.limits.max_nodes);
            return Err(Box::new(self.err(
                codes::LIMIT_EXCEEDED,
                message,
                pos,
                None,
            )));
        }
        Ok(())
    }

    fn scalar_value(
        &mut self,
        text: std::borrow::Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<std::borrow::Cow<'_, Tag>>,
        pos: Pos,
        loc: Option<&Loc>,
    ) -> Value {
        // Only a rejected value needs its text quoted for a message; keep the (usually
        // borrowed) text for that instead of quoting every scalar up front.
        let original = text.clone();
        let shown = || quote_user(&original);
        let tag_suffix = tag.as_deref().map(|t| t.suffix.clone());
        if let Some(t) = tag.as_deref() {
            if !t.is_yaml_core_schema() {
                self.reject_tag(t, pos, loc);
                return Value::Null;
            }
        }
        let message = match Scalar::parse_from_cow_and_metadata(text, style, tag.as_ref()) {
            Some(Scalar::Null) => return Value::Null,
            Some(Scalar::Boolean(b)) => return Value::Bool(b),
            Some(Scalar::Integer(i)) => return Value::Number(i.into()),
            Some(Scalar::String(s)) => return Value::String(s.into_owned()),
            // An integer too large for i64 comes back as a float; keep it exact where u64
            // can, and keep -2^63 - 1 from rounding onto i64::MIN, so range checks see it.
            Some(Scalar::FloatingPoint(_)) if is_decimal_integer(&original) => {
                match original.trim_start_matches('+').parse::<u64>() {
                    Ok(u) => return Value::Number(u.into()),
                    Err(_) => match original.parse::<f64>() {
                        Ok(f) if f == i64::MIN as f64 => {
                            // The next float below (`f64::next_down` needs Rust 1.86).
                            return Value::from(f64::from_bits(f.to_bits() + 1));
                        }
                        Ok(f) if f.is_finite() => return Value::from(f),
                        _ => format!("`{}` has no JSON equivalent", shown()),
                    },
                }
            }
            Some(Scalar::FloatingPoint(f)) => match Number::from_f64(f.into_inner()) {
                Some(n) => return Value::Number(n),
                None => format!("`{}` (infinity or NaN) has no JSON equivalent", shown()),
            },
            None => match tag_suffix {
                Some(suffix)
                    if ["bool", "int", "float", "null", "str"].contains(&suffix.as_str()) =>
                {
                    format!("`{}` is not a valid `!!{suffix}`", shown())
                }
                Some(suffix) => format!("unsupported tag `!!{}`", quote_user(&suffix)),
                None => format!("cannot read value `{}`", shown()),
            },
        };
        let help = if message.contains("infinity") {
            "quote it to make it a string, or use a finite number"
        } else {
            "manifests use plain YAML values; remove the tag"
        };
        let d = self
            .err(codes::UNSUPPORTED_VALUE, message, pos, loc)
            .with_help(help);
        self.soft(d, loc);
        if let Some(l) = loc {
            self.rejected.push(l.pointer.clone());
        }
        Value::Null
    }

    fn reject_tag(&mut self, tag: &Tag, pos: Pos, loc: Option<&Loc>) {
        let d = self
            .err(
                codes::UNSUPPORTED_VALUE,
                format!("unsupported tag `{}`", show_tag(tag)),
                pos,
                loc,
            )
            .with_help("manifests use plain YAML values; remove the tag");
        self.soft(d, loc);
        if let Some(l) = loc {
            self.rejected.push(l.pointer.clone());
        }
    }

    fn depth_error(&self, pos: Pos, loc: Option<&Loc>) -> Diagnostic {
        let message = format!("nesting is deeper than {} levels", self.limits.max_depth);
        self.err(codes::LIMIT_EXCEEDED, message, pos, loc)
    }

    fn scan_error(&self, e: &ScanError) -> Diagnostic {
        let m = e.marker();
        let pos = Pos {
            line: m.line().max(1),
            col: m.col() + 1,
        };
        // saphyr-parser caps flow nesting itself, before our depth limit can see it.
        if e.info().contains("recursion limit") {
            let message =
                "nesting is deeper than the YAML parser allows (recursion limit exceeded)";
            return self.err(codes::LIMIT_EXCEEDED, message, pos, None);
        }
        // Inside a quoted scalar the parser reads a raw control character as the end of
        // the stream ("found unexpected end of stream"): name the character instead.
        if let Some((line, col, c)) = self.lines.first_unprintable() {
            if (line, col) <= (pos.line, pos.col) || e.info().contains("end of stream") {
                let code = u32::from(c);
                let escape = match code {
                    0..=0xff => format!("\\x{code:02X}"),
                    _ => format!("\\u{code:04X}"),
                };
                let message = format!(
                    "YAML syntax error: control character U+{code:04X} in the text; YAML allows \
                     it only written as an escape inside double quotes (\"{escape}\")"
                );
                return self.err(codes::YAML_SYNTAX, message, Pos { line, col }, None);
            }
        }
        self.err(
            codes::YAML_SYNTAX,
            format!("YAML syntax error: {}", e.info()),
            pos,
            None,
        )
    }

    fn err(
        &self,
        code: &'static str,
        message: impl Into<String>,
        pos: Pos,
        loc: Option<&Loc>,
    ) -> Diagnostic {
        let d = Diagnostic::error(code, self.file, message)
            .with_path(loc.map(|l| l.path.clone()).unwrap_or_default());
        located(d, self.lines, Some((pos.line, pos.col)))
    }
}

/// Tags as written: `!!python/object`, `!local`.
fn show_tag(tag: &Tag) -> String {
    let text = if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else if tag.handle == "!" {
        format!("!{}", tag.suffix)
    } else {
        format!("!<{}{}>", tag.handle, tag.suffix)
    };
    quote_user(&text)
}

fn clone_built(built: &Built) -> Built {
    Built {
        value: built.value.clone(),
        nodes: built.nodes,
        height: built.height,
    }
}

fn pos_of(span: Span) -> Pos {
    Pos {
        line: span.start.line().max(1),
        col: span.start.col() + 1,
    }
}

/// Whether a scalar is a YAML 1.2 core-schema decimal integer (`[-+]?[0-9]+`).
fn is_decimal_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

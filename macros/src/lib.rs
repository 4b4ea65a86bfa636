//! The `#[blitz_io::main]` and `#[blitz_io::test]` attribute macros.
//!
//! This crate is a companion of [blitz-io](https://docs.rs/blitz-io) and is meant to be
//! used through it: `blitz_io` re-exports both macros, so write `#[blitz_io::main]` and
//! `#[blitz_io::test]` and depend on `blitz-io` alone. The expansion names the runtime
//! as `::blitz_io::runtime::…`, so the `blitz-io` crate must be a dependency of the crate
//! that uses the macros (under that name, or see the `crate` argument below).
//!
//! Both macros turn an `async fn` into an ordinary `fn` that builds a blitz-io runtime
//! and blocks on the function's body:
//!
//! ```text
//! #[blitz_io::main]
//! async fn main() -> std::io::Result<()> {
//!     let listener = blitz_io::net::listen("127.0.0.1:8080")?;
//!     // ...
//!     Ok(())
//! }
//! ```
//!
//! expands to (roughly)
//!
//! ```text
//! fn main() -> std::io::Result<()> {
//!     let body = async move {
//!         let listener = blitz_io::net::listen("127.0.0.1:8080")?;
//!         // ...
//!         Ok(())
//!     };
//!     let rt = ::blitz_io::runtime::Builder::new_multi_thread()
//!         .build()
//!         .expect("failed to build the blitz-io runtime");
//!     rt.block_on(body)
//! }
//! ```
//!
//! A runtime that cannot be built (the OS refused the poller or a thread) panics with
//! that message, as with tokio: there is nothing sensible `main` could do instead.
//!
//! # Arguments
//!
//! Both macros accept the same comma-separated `key = value` arguments:
//!
//! | argument | meaning |
//! |---|---|
//! | `flavor = "multi_thread"` | a work-stealing runtime with worker threads ([`Builder::new_multi_thread`]); the default of [`main`] |
//! | `flavor = "current_thread"` | everything runs on the calling thread ([`Builder::new_current_thread`]); the default of [`test`] |
//! | `worker_threads = N` | number of worker threads (`N >= 1`); only with the multi-thread flavor; without it the runtime picks its default |
//! | `crate = "path"` | where the `blitz_io` crate is, when it is renamed in `Cargo.toml` or used from inside blitz-io itself; default `"::blitz_io"` |
//!
//! Anything else is rejected with a `compile_error!` pointing at the offending argument,
//! as are: a function without `async`, generic parameters or a `where` clause, arguments
//! on `main` or on a test, a function without a body, and a second test attribute.
//!
//! The function keeps its attributes (doc comments, `#[should_panic]`, `#[ignore]`,
//! lints, …), its visibility, its name and its return type.
//!
//! [`Builder::new_multi_thread`]: https://docs.rs/blitz-io/latest/blitz_io/runtime/struct.Builder.html#method.new_multi_thread
//! [`Builder::new_current_thread`]: https://docs.rs/blitz-io/latest/blitz_io/runtime/struct.Builder.html#method.new_current_thread
//!
//! # About the examples
//!
//! The examples in this crate's documentation are `text` blocks, not doctests: a doctest
//! of a proc-macro crate cannot depend on `blitz-io` (which depends on this crate), and
//! the macros are useless without it. The same examples are compiled and run as
//! blitz-io's integration tests (`tests/macros.rs` in the blitz-io repository).

#![warn(missing_docs)]

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// Marks the `async fn` that a blitz-io runtime runs to completion, usually `main`.
///
/// The function becomes a plain `fn` with the same signature (minus `async`) that builds
/// a runtime, blocks the calling thread on the function's body and returns its output.
/// The default runtime is the multi-thread one, with the runtime's default number of
/// worker threads. See the [crate documentation](crate) for every argument and the exact
/// expansion.
///
/// # Examples
///
/// (`text` blocks: this crate's doctests cannot depend on `blitz-io`; the same code is
/// compiled in blitz-io's `tests/macros.rs`.)
///
/// The default, a multi-thread runtime:
///
/// ```text
/// #[blitz_io::main]
/// async fn main() {
///     let handle = blitz_io::task::spawn(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
/// }
/// ```
///
/// A fixed number of workers, and `?` in the body:
///
/// ```text
/// #[blitz_io::main(worker_threads = 4)]
/// async fn main() -> std::io::Result<()> {
///     let stream = blitz_io::net::connect("127.0.0.1:8080").await?;
///     // ...
///     Ok(())
/// }
/// ```
///
/// Everything on the main thread:
///
/// ```text
/// #[blitz_io::main(flavor = "current_thread")]
/// async fn main() {
///     blitz_io::time::sleep(blitz_io::Duration::from_millis(10)).await;
/// }
/// ```
///
/// The attribute also works on a function other than `main` (which may then take
/// arguments); each call builds a fresh runtime and blocks on it:
///
/// ```text
/// #[blitz_io::main(flavor = "current_thread")]
/// async fn fetch(addr: &'static str) -> std::io::Result<usize> {
///     // ...
/// #   Ok(0)
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args, item)
}

/// Marks an `async fn` as a test that runs on a blitz-io runtime.
///
/// Like [`macro@main`], plus the `#[test]` attribute. The default runtime is the
/// current-thread one, so a test is deterministic unless it asks for
/// `flavor = "multi_thread"`. Each test gets its own runtime, dropped when the test
/// returns. Other attributes stay on the function, so `#[should_panic]` and `#[ignore]`
/// work; do not add `#[test]` yourself. See the [crate documentation](crate) for every
/// argument.
///
/// # Examples
///
/// (`text` blocks: this crate's doctests cannot depend on `blitz-io`; the same code is
/// compiled in blitz-io's `tests/macros.rs`.)
///
/// ```text
/// #[blitz_io::test]
/// async fn yields() {
///     blitz_io::task::yield_now().await;
/// }
///
/// #[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
/// async fn spawns() {
///     let handle = blitz_io::task::spawn(async { 1 + 1 });
///     assert_eq!(handle.await.unwrap(), 2);
/// }
///
/// #[blitz_io::test]
/// async fn fallible() -> std::io::Result<()> {
///     let listener = blitz_io::net::listen("127.0.0.1:0")?;
///     drop(listener);
///     Ok(())
/// }
///
/// #[blitz_io::test]
/// #[should_panic(expected = "boom")]
/// async fn panics() {
///     panic!("boom");
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args, item)
}

// ---------------------------------------------------------------------------------------
// Driver

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[blitz_io::main]",
            Kind::Test => "#[blitz_io::test]",
        }
    }

    fn default_flavor(self) -> Flavor {
        match self {
            Kind::Main => Flavor::MultiThread,
            Kind::Test => Flavor::CurrentThread,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

/// A compile error spanning `start..=end`.
struct Error {
    start: Span,
    end: Span,
    msg: String,
}

impl Error {
    fn new(span: Span, msg: impl Into<String>) -> Self {
        Self::spanning(span, span, msg)
    }

    fn spanning(start: Span, end: Span, msg: impl Into<String>) -> Self {
        Error { start, end, msg: msg.into() }
    }

    /// `::core::compile_error! { "msg" }`, with the path on `start` and the message on
    /// `end`, so that the diagnostic covers both (the usual trick while `Span::join` is
    /// unstable).
    fn to_tokens(&self) -> TokenStream {
        let mut ts = path(&["core", "compile_error"], self.start);
        ts.extend([punct('!', self.start)]);
        let mut msg = Literal::string(&self.msg);
        msg.set_span(self.end);
        let mut group = Group::new(Delimiter::Brace, TokenTree::Literal(msg).into());
        group.set_span(self.end);
        ts.extend([TokenTree::Group(group)]);
        ts
    }
}

fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match ItemFn::parse(kind, item.clone()) {
        Ok(func) => func,
        Err(e) => {
            // Not a function we understand: leave the item alone so that only our
            // error (and not a cascade of "cannot find function") is reported.
            let mut ts = e.to_tokens();
            ts.extend(item);
            return ts;
        }
    };
    let checked = parse_args(kind, args).and_then(|config| {
        func.check(kind)?;
        Ok(config)
    });
    match checked {
        Ok(config) => func.expand(kind, &config),
        Err(e) => {
            let mut ts = e.to_tokens();
            ts.extend(func.stub());
            ts
        }
    }
}

// ---------------------------------------------------------------------------------------
// Arguments

struct Config {
    flavor: Flavor,
    worker_threads: Option<usize>,
    krate: TokenStream,
}

const ARGS_HELP: &str =
    "expected `flavor = \"current_thread\"`, `flavor = \"multi_thread\"`, `worker_threads = N` or `crate = \"path\"`";

fn parse_args(kind: Kind, args: TokenStream) -> Result<Config, Error> {
    let tokens = flatten(args);
    let mut flavor: Option<(Flavor, Span)> = None;
    let mut worker_threads: Option<(usize, Span, Span)> = None;
    let mut krate: Option<TokenStream> = None;

    let mut i = 0;
    while i < tokens.len() {
        let key = match &tokens[i] {
            TokenTree::Ident(key) => key.clone(),
            other => {
                return Err(Error::new(
                    other.span(),
                    format!("unexpected `{other}` in {} arguments; {ARGS_HELP}", kind.attr()),
                ))
            }
        };
        let name = key.to_string();
        let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
        match tokens.get(i + 1) {
            Some(TokenTree::Punct(p)) if p.as_char() == '=' => {}
            Some(other) => return Err(Error::new(other.span(), format!("expected `=` after `{name}`; {ARGS_HELP}"))),
            None => return Err(Error::new(key.span(), format!("`{name}` needs a value; {ARGS_HELP}"))),
        }
        let value = match tokens.get(i + 2) {
            Some(TokenTree::Literal(lit)) => lit.clone(),
            Some(other) => {
                return Err(Error::spanning(
                    key.span(),
                    other.span(),
                    format!("the value of `{name}` must be a literal; {ARGS_HELP}"),
                ))
            }
            None => {
                return Err(Error::spanning(
                    key.span(),
                    tokens[i + 1].span(),
                    format!("`{name}` needs a value; {ARGS_HELP}"),
                ))
            }
        };
        let (start, end) = (key.span(), value.span());
        let duplicate = || Error::spanning(start, end, format!("`{name}` is given twice"));

        match name.as_str() {
            "flavor" => {
                if flavor.is_some() {
                    return Err(duplicate());
                }
                let f = match string_value(&value).as_deref() {
                    Some("current_thread") => Flavor::CurrentThread,
                    Some("multi_thread") => Flavor::MultiThread,
                    Some(other) => {
                        return Err(Error::spanning(
                            start,
                            end,
                            format!(
                                "unknown runtime flavor `{other}`; expected \"current_thread\" or \"multi_thread\""
                            ),
                        ))
                    }
                    None => {
                        return Err(Error::spanning(
                            start,
                            end,
                            "`flavor` takes a string: `flavor = \"current_thread\"` or `flavor = \"multi_thread\"`",
                        ))
                    }
                };
                flavor = Some((f, start));
            }
            "worker_threads" => {
                if worker_threads.is_some() {
                    return Err(duplicate());
                }
                let n = match int_value(&value) {
                    Some(0) => {
                        return Err(Error::spanning(
                            start,
                            end,
                            "`worker_threads` must be at least 1",
                        ))
                    }
                    Some(n) => n,
                    None => {
                        return Err(Error::spanning(
                            start,
                            end,
                            "`worker_threads` takes a positive integer literal, such as `worker_threads = 4`",
                        ))
                    }
                };
                worker_threads = Some((n, start, end));
            }
            "crate" => {
                if krate.is_some() {
                    return Err(duplicate());
                }
                // Only a path (identifiers separated by `::`) is parsed: `TokenStream`'s
                // parser panics inside the compiler on lexer errors (an unterminated
                // quote or comment) instead of returning `Err`.
                let path = string_value(&value)
                    .filter(|s| is_path(s))
                    .and_then(|s| s.parse::<TokenStream>().ok())
                    .filter(|ts| !ts.is_empty());
                match path {
                    Some(path) => krate = Some(respan(path, value.span())),
                    None => {
                        return Err(Error::spanning(
                            start,
                            end,
                            "`crate` takes the path of the blitz_io crate as a string, such as `crate = \"::blitz_io\"`",
                        ))
                    }
                }
            }
            "start_paused" | "unhandled_panic" | "core_threads" | "max_threads"
            | "max_blocking_threads" => {
                return Err(Error::spanning(
                    start,
                    end,
                    format!(
                        "`{name}` is not supported by {}; {ARGS_HELP}. Build a runtime with `blitz_io::runtime::Builder` for other settings",
                        kind.attr()
                    ),
                ))
            }
            _ => {
                return Err(Error::spanning(
                    start,
                    end,
                    format!("unknown argument `{name}` to {}; {ARGS_HELP}", kind.attr()),
                ))
            }
        }

        i += 3;
        match tokens.get(i) {
            None => {}
            Some(TokenTree::Punct(p)) if p.as_char() == ',' => i += 1,
            Some(other) => {
                return Err(Error::new(other.span(), format!("expected `,` between arguments, found `{other}`")))
            }
        }
    }

    let flavor_value = flavor.map_or(kind.default_flavor(), |(f, _)| f);
    if let Some((_, start, end)) = worker_threads {
        if flavor_value == Flavor::CurrentThread {
            let msg = if flavor.is_some() {
                "`worker_threads` cannot be used with `flavor = \"current_thread\"`: that runtime runs everything on the calling thread; use `flavor = \"multi_thread\"`".to_owned()
            } else {
                format!(
                    "`worker_threads` needs the multi-thread runtime, and the default of {} is the current-thread one; add `flavor = \"multi_thread\"`",
                    kind.attr()
                )
            };
            return Err(Error::spanning(start, end, msg));
        }
    }

    Ok(Config {
        flavor: flavor_value,
        worker_threads: worker_threads.map(|(n, _, _)| n),
        krate: krate.unwrap_or_else(|| path(&["blitz_io"], Span::call_site())),
    })
}

/// The contents of a plain (non-raw, escape-free) string literal.
fn string_value(lit: &Literal) -> Option<String> {
    let s = lit.to_string();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains(['\\', '"']) {
        return None;
    }
    Some(inner.to_owned())
}

/// The value of a decimal integer literal, with optional `_` separators and an unsigned
/// or `i32`/`i64`/`isize` suffix.
fn int_value(lit: &Literal) -> Option<usize> {
    let s = lit.to_string();
    let digits = ["usize", "u64", "u32", "u16", "u8", "isize", "i64", "i32"]
        .iter()
        .find_map(|suffix| s.strip_suffix(suffix))
        .unwrap_or(&s);
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

// ---------------------------------------------------------------------------------------
// The function

/// An `async fn` split into the parts the expansion rearranges.
struct ItemFn {
    /// Outer attributes, as `#` `[...]` pairs (doc comments included).
    attrs: Vec<TokenTree>,
    /// `pub`, `pub(crate)`, … or nothing.
    vis: Vec<TokenTree>,
    /// Qualifiers other than `async` (`unsafe`, `extern "C"`, …), left to rustc.
    quals: Vec<TokenTree>,
    asyncness: Option<Span>,
    fn_token: Span,
    name: Ident,
    /// The first token of a generic parameter list or `where` clause, if any.
    generics: Option<(Span, &'static str)>,
    params: Group,
    /// The tokens after `->`, including the arrow; empty for `()`.
    output: Vec<TokenTree>,
    body: Group,
}

impl ItemFn {
    fn parse(kind: Kind, item: TokenStream) -> Result<Self, Error> {
        let tokens = flatten(item);
        let not_fn = |span: Span| Error::new(span, format!("{} can only be applied to an `async fn`", kind.attr()));
        let mut i = 0;

        let mut attrs = Vec::new();
        while let (Some(TokenTree::Punct(hash)), Some(TokenTree::Group(g))) = (tokens.get(i), tokens.get(i + 1)) {
            if hash.as_char() != '#' || g.delimiter() != Delimiter::Bracket {
                break;
            }
            attrs.extend_from_slice(&tokens[i..i + 2]);
            i += 2;
        }

        let mut vis = Vec::new();
        if is_ident(tokens.get(i), "pub") {
            vis.push(tokens[i].clone());
            i += 1;
            if let Some(TokenTree::Group(g)) = tokens.get(i) {
                if g.delimiter() == Delimiter::Parenthesis {
                    vis.push(tokens[i].clone());
                    i += 1;
                }
            }
        }

        let mut quals = Vec::new();
        let mut asyncness = None;
        let fn_token = loop {
            match tokens.get(i) {
                Some(TokenTree::Ident(id)) => {
                    let word = id.to_string();
                    match word.as_str() {
                        "fn" => break id.span(),
                        "async" => asyncness = Some(id.span()),
                        "const" | "unsafe" | "extern" | "default" | "safe" => quals.push(tokens[i].clone()),
                        _ => return Err(not_fn(id.span())),
                    }
                }
                // The ABI string of `extern "C"`.
                Some(TokenTree::Literal(_)) if is_ident(quals.last(), "extern") => quals.push(tokens[i].clone()),
                Some(other) => return Err(not_fn(other.span())),
                None => return Err(not_fn(tokens.last().map_or_else(Span::call_site, TokenTree::span))),
            }
            i += 1;
        };
        i += 1;

        let name = match tokens.get(i) {
            Some(TokenTree::Ident(name)) => name.clone(),
            other => return Err(not_fn(other.map_or(fn_token, TokenTree::span))),
        };
        i += 1;

        let mut generics = None;
        if let Some(TokenTree::Punct(p)) = tokens.get(i) {
            if p.as_char() == '<' {
                generics = Some((p.span(), "generic parameters"));
                // Skip to the parameter list: `<` … `>` holds no parenthesized group at
                // its top level except inside nested generics, so find the first one.
                while i < tokens.len()
                    && !matches!(&tokens[i], TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis)
                {
                    i += 1;
                }
            }
        }

        let params = match tokens.get(i) {
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => g.clone(),
            other => return Err(not_fn(other.map_or(name.span(), TokenTree::span))),
        };
        i += 1;

        let body = match tokens.last() {
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace && i < tokens.len() => g.clone(),
            Some(other) => return Err(Error::new(other.span(), format!("{} needs a function body", kind.attr()))),
            None => return Err(not_fn(name.span())),
        };
        let mut output: Vec<TokenTree> = tokens[i..tokens.len() - 1].to_vec();
        if let Some(pos) = output.iter().position(|t| is_ident(Some(t), "where")) {
            generics.get_or_insert((output[pos].span(), "a `where` clause"));
            output.truncate(pos);
        }
        match output.as_slice() {
            [] => {}
            [TokenTree::Punct(dash), TokenTree::Punct(gt), _, ..] if dash.as_char() == '-' && gt.as_char() == '>' => {}
            [first, ..] => {
                return Err(Error::new(first.span(), format!("expected `->` or a function body, found `{first}`")))
            }
        }

        Ok(ItemFn { attrs, vis, quals, asyncness, fn_token, name, generics, params, output, body })
    }

    /// The checks that need the whole signature; parsing already rejected non-functions.
    fn check(&self, kind: Kind) -> Result<(), Error> {
        if self.asyncness.is_none() {
            return Err(Error::spanning(
                self.fn_token,
                self.name.span(),
                format!(
                    "the `async` keyword is missing from the function declaration; {} runs an `async fn`",
                    kind.attr()
                ),
            ));
        }
        if let Some((span, what)) = self.generics {
            return Err(Error::new(
                span,
                format!(
                    "{} functions cannot have {what}: the runtime calls the function with no type arguments",
                    kind.attr()
                ),
            ));
        }
        let has_params = !self.params.stream().is_empty();
        if has_params && kind == Kind::Test {
            return Err(Error::new(self.params.span(), "test functions cannot take arguments"));
        }
        if has_params && self.name.to_string() == "main" {
            return Err(Error::new(
                self.params.span(),
                "`main` cannot take arguments; use `std::env::args()` to read the command line",
            ));
        }
        if kind == Kind::Test {
            let mut attrs = self.attrs.iter();
            while let (Some(_hash), Some(TokenTree::Group(g))) = (attrs.next(), attrs.next()) {
                if is_test_attr(g) {
                    return Err(Error::new(
                        g.span(),
                        "a second test attribute is supplied; #[blitz_io::test] already adds #[test]",
                    ));
                }
            }
        }
        Ok(())
    }

    fn expand(&self, kind: Kind, config: &Config) -> TokenStream {
        let call = Span::call_site();
        // Locals of the expansion are invisible to the user's body and vice versa.
        let body_ident = TokenTree::Ident(Ident::new("body", Span::mixed_site()));
        let rt_ident = TokenTree::Ident(Ident::new("rt", Span::mixed_site()));

        let mut ts = TokenStream::new();
        if kind == Kind::Test {
            // `#[::core::prelude::v1::test]` first, so that `#[should_panic]` and
            // `#[ignore]` below it apply to the test.
            ts.extend(attribute(path(&["core", "prelude", "v1", "test"], call)));
        }
        ts.extend(self.attrs.iter().cloned());
        ts.extend(self.vis.iter().cloned());
        ts.extend(self.quals.iter().cloned());
        ts.extend([
            TokenTree::Ident(Ident::new("fn", self.fn_token)),
            TokenTree::Ident(self.name.clone()),
            TokenTree::Group(self.params.clone()),
        ]);
        ts.extend(self.output.iter().cloned());

        // let body = async move { … };
        let mut block = TokenStream::new();
        block.extend([
            ident("let", call),
            body_ident.clone(),
            punct('=', call),
            ident("async", self.asyncness.unwrap_or(call)),
            ident("move", call),
            TokenTree::Group(self.body.clone()),
            punct(';', call),
        ]);

        // #[allow(clippy::expect_used)]
        // let rt = ::blitz_io::runtime::Builder::new_…().….build().expect("…");
        let mut allow = TokenStream::new();
        allow.extend([ident("allow", call)]);
        let mut lint = TokenStream::new();
        lint.extend([ident("clippy", call)]);
        lint.extend(colons(call));
        lint.extend([ident("expect_used", call)]);
        allow.extend([group(Delimiter::Parenthesis, lint)]);
        block.extend(attribute(allow));

        let mut builder = config.krate.clone();
        builder.extend(colons(call));
        builder.extend([ident("runtime", call)]);
        builder.extend(colons(call));
        builder.extend([ident("Builder", call)]);
        builder.extend(colons(call));
        builder.extend(method_call_tail(
            match config.flavor {
                Flavor::CurrentThread => "new_current_thread",
                Flavor::MultiThread => "new_multi_thread",
            },
            TokenStream::new(),
        ));
        if let Some(n) = config.worker_threads {
            builder.extend([punct('.', call)]);
            builder.extend(method_call_tail("worker_threads", TokenTree::Literal(Literal::usize_unsuffixed(n)).into()));
        }
        builder.extend([punct('.', call)]);
        builder.extend(method_call_tail("build", TokenStream::new()));
        builder.extend([punct('.', call)]);
        builder.extend(method_call_tail(
            "expect",
            TokenTree::Literal(Literal::string("failed to build the blitz-io runtime")).into(),
        ));
        block.extend([ident("let", call), rt_ident.clone(), punct('=', call)]);
        block.extend(builder);
        block.extend([punct(';', call)]);

        // rt.block_on(body)
        block.extend([rt_ident, punct('.', call)]);
        block.extend(method_call_tail("block_on", body_ident.into()));

        ts.extend([group(Delimiter::Brace, block)]);
        ts
    }

    /// What stands in for the function when an error was reported: a synchronous
    /// function with the same name and signature, so that the error is not followed by
    /// "`main` function not found" or "`main` is not allowed to be `async`".
    fn stub(&self) -> TokenStream {
        let call = Span::call_site();
        let mut ts = TokenStream::new();
        ts.extend(self.attrs.iter().cloned());
        let mut allow = TokenStream::new();
        allow.extend([ident("allow", call)]);
        let mut lints = TokenStream::new();
        lints.extend([ident("dead_code", call), punct(',', call), ident("unused_variables", call)]);
        allow.extend([group(Delimiter::Parenthesis, lints)]);
        ts.extend(attribute(allow));
        ts.extend(self.vis.iter().cloned());
        ts.extend(self.quals.iter().cloned());
        // `main` with parameters was reported already; rustc need not say it again.
        let params = if self.name.to_string() == "main" {
            let mut empty = Group::new(Delimiter::Parenthesis, TokenStream::new());
            empty.set_span(self.params.span());
            empty
        } else {
            self.params.clone()
        };
        ts.extend([
            TokenTree::Ident(Ident::new("fn", self.fn_token)),
            TokenTree::Ident(self.name.clone()),
            TokenTree::Group(params),
        ]);
        ts.extend(self.output.iter().cloned());
        let mut body = path(&["core", "unreachable"], call);
        body.extend([punct('!', call), group(Delimiter::Parenthesis, TokenStream::new())]);
        ts.extend([group(Delimiter::Brace, body)]);
        ts
    }
}

/// Whether an attribute's `[...]` is a test attribute: `test`, `core::prelude::v1::test`,
/// `blitz_io::test`, `tokio::test(...)`, …
fn is_test_attr(g: &Group) -> bool {
    let tokens: Vec<TokenTree> = g.stream().into_iter().collect();
    let path_len = tokens
        .iter()
        .position(|t| !matches!(t, TokenTree::Ident(_)) && !matches!(t, TokenTree::Punct(p) if p.as_char() == ':'))
        .unwrap_or(tokens.len());
    let rest_ok = match &tokens[path_len..] {
        [] => true,
        [TokenTree::Group(args)] => args.delimiter() == Delimiter::Parenthesis,
        _ => false,
    };
    rest_ok && path_len > 0 && is_ident(tokens.get(path_len - 1), "test")
}

// ---------------------------------------------------------------------------------------
// Token helpers

/// The token trees of a stream, with invisible (`Delimiter::None`) groups — which is how
/// `macro_rules!` fragments such as `$vis` or `$body:block` arrive — opened up.
fn flatten(ts: TokenStream) -> Vec<TokenTree> {
    let mut out = Vec::new();
    for tt in ts {
        match tt {
            TokenTree::Group(g) if g.delimiter() == Delimiter::None => out.extend(flatten(g.stream())),
            tt => out.push(tt),
        }
    }
    out
}

/// `ts` with every token (recursively) moved to `span`.
fn respan(ts: TokenStream, span: Span) -> TokenStream {
    ts.into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(g) = &tt {
                let mut new = Group::new(g.delimiter(), respan(g.stream(), span));
                new.set_span(span);
                tt = TokenTree::Group(new);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

fn is_ident(tt: Option<&TokenTree>, word: &str) -> bool {
    matches!(tt, Some(TokenTree::Ident(id)) if id.to_string() == word)
}

fn ident(word: &str, span: Span) -> TokenTree {
    TokenTree::Ident(Ident::new(word, span))
}

fn punct(c: char, span: Span) -> TokenTree {
    let mut p = Punct::new(c, Spacing::Alone);
    p.set_span(span);
    TokenTree::Punct(p)
}

fn colons(span: Span) -> [TokenTree; 2] {
    let mut first = Punct::new(':', Spacing::Joint);
    first.set_span(span);
    [TokenTree::Punct(first), punct(':', span)]
}

fn group(delimiter: Delimiter, ts: TokenStream) -> TokenTree {
    let mut g = Group::new(delimiter, ts);
    g.set_span(Span::call_site());
    TokenTree::Group(g)
}

/// `::a::b::c`
fn path(segments: &[&str], span: Span) -> TokenStream {
    let mut ts = TokenStream::new();
    for segment in segments {
        ts.extend(colons(span));
        ts.extend([ident(segment, span)]);
    }
    ts
}

/// `#[contents]`
fn attribute(contents: TokenStream) -> [TokenTree; 2] {
    [punct('#', Span::call_site()), group(Delimiter::Bracket, contents)]
}

/// `name(args)`
fn method_call_tail(name: &str, args: TokenStream) -> [TokenTree; 2] {
    [ident(name, Span::call_site()), group(Delimiter::Parenthesis, args)]
}

/// Whether `s` is a Rust path such as `::blitz_io`, `blitz_io` or `my::reexport` (with
/// an optional leading `::`; `r#` raw identifiers allowed): the only strings the `crate`
/// argument hands to the token parser.
fn is_path(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix("::").unwrap_or(s);
    !s.is_empty()
        && s.split("::").all(|seg| {
            let seg = seg.trim();
            let ident = seg.strip_prefix("r#").unwrap_or(seg);
            let mut chars = ident.chars();
            matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::is_path;

    #[test]
    fn only_paths_reach_the_token_parser() {
        for ok in ["::blitz_io", "blitz_io", "my::reexport::blitz_io", " ::a :: b ", "r#crate_x", "_x1"] {
            assert!(is_path(ok), "{ok:?}");
        }
        // Strings the token parser would panic on (unterminated quote, comment, raw
        // string), and other things that are not paths.
        for bad in ["'", "/* x", "b'", "r#", "\"", "", "::", "a::", "1abc", "a b", "a-b", "a::<T>", "a;b"] {
            assert!(!is_path(bad), "{bad:?}");
        }
    }
}

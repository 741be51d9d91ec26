//! Errors of the library and how the command line reports them.
//!
//! This module owns [`Error`], the one error type every public function returns.
//! Errors caused by the user's input (a bad file, a bad parameter) are
//! [`Error::Input`] or [`Error::Parse`] and make the CLI exit with code 2;
//! anything else (an I/O failure while writing, a broken internal promise)
//! exits with code 1.

use std::path::{Path, PathBuf};

/// The error type of `spillover`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem at a known place of an input file: file, line, what was expected.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file that was being read.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A problem with the user's input that has no line: a missing file, an
    /// empty file, a parameter out of range.
    #[error("{0}")]
    Input(String),
    /// An I/O failure outside the user's control (e.g. while writing output).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A result failed a check the library makes on itself.
    #[error("internal check failed: {0}")]
    Internal(String),
}

impl Error {
    /// Build an [`Error::Parse`].
    pub fn parse(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// Build an [`Error::Input`].
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }

    /// Build an [`Error::Io`] with a description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code the CLI uses for this error: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Parse { .. } | Error::Input(_) => 2,
            Error::Io { .. } | Error::Internal(_) => 1,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

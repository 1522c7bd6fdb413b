//! The qst supervisor.

//! The qst worker process.

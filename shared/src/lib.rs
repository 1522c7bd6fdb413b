//! Types both qst processes speak: jobs, results, IPC messages (length-prefixed postcard frames).

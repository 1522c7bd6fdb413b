// End-to-end tests: the real `qst` binary, real processes, real files.

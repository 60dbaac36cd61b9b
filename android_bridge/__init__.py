"""Mobile bundles for Android and other JVM apps (``qwen-asr-edge android-pack``): ORT-format graphs,
the log-mel front end as a graph, the tokenizer as plain data and golden vectors; see README.md here."""

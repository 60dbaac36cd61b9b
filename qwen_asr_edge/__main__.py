from qwen_asr_edge.cli import main

raise SystemExit(main())

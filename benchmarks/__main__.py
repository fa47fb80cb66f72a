"""``python -m benchmarks CLIP [CLIP...] [options]`` — see benchmarks/README.md."""

from benchmarks.run import main

raise SystemExit(main())

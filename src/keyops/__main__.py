from keyops.cli import main

raise SystemExit(main())

from keyops.cli.main import main

raise SystemExit(main())

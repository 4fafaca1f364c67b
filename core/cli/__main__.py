"""`python -m core.cli`."""

from core.cli import exit_now, main

exit_now(main())

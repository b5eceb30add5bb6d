from mrbench.cli import main

main()

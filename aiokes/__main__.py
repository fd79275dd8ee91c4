from aiokes.cli import main

main()

"""The command line: parsing, ``recorder record``, the folder commands, the console. May import
every room."""

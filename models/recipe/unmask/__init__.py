"""The recipe's library: everything the stages in scripts/ share. Importing it runs nothing; see README.md."""

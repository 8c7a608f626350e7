"""The rule language: rule files, validation, text normalisation, the Rulebook matcher, snippets."""

"""Models of the course, one file per family (plain ``nn.Module``s)."""

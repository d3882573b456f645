"""SQL of finance tickets."""

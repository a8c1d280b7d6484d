"""Knowledge REST API: knowledge bases and their documents, search, and the files of doc 001 §4.5."""

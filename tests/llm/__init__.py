"""Generator backends (evo.llm): vLLM, OpenAI, CTranslate2, transformers, embedded models."""

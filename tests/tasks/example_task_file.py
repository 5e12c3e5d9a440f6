"""The task file the task-file tests start from (a math task over rows.jsonl beside it)."""

EXAMPLE_TOML = """name = "my-algebra"
data = "rows.jsonl"
answer_type = "math"
n = 8
prompt = "Please reason step by step, and put your final answer within \\\\boxed{}. {problem}"
[fields]
id = "qid"
problem = "question"
answer = "final"
"""

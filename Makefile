# The two commands a newcomer needs; see README.md.
.PHONY: demo test bench

demo:  ## install, load sample data and serve the demo on http://127.0.0.1:8000/
	@scripts/demo.sh

test:  ## install and run every test (again on PostgreSQL + Redis when DATABASE_URL and REDIS_URL are set)
	@scripts/test.sh $(ARGS)

bench:  ## the real-time benchmark against its yardstick (bench/README.md); ARGS=--quick for a 2-minute run
	@scripts/venv.sh requirements-bench.txt
	@.venv/bin/python bench/run.py $(ARGS)

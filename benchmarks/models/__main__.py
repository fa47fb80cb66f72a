from benchmarks.models.run import main

main()

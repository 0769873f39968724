from billing_hooks.service.app import main

main()

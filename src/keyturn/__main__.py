from keyturn._command import main

main()

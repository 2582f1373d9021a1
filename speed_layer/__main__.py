from speed_layer.consumer import main

main()

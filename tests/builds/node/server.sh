echo "serving $(cat /app/src/index.js) on $PORT as $(id -u) env=$NODE_ENV"

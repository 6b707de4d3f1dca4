-- vigil:no-transaction

    DROP DATABASE IF EXISTS shop_old;
